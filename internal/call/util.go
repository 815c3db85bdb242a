package call

import (
	"errors"
	"time"

	"github.com/tapedeck/tapedeck/internal/codec"
	"github.com/tapedeck/tapedeck/internal/event"
)

func eventTime(t time.Time) event.Time { return event.Time(t) }

func errorsIs(err, target error) bool { return errors.Is(err, target) }

// eventOf wraps a body for the bus, reading its type from event.Base.
func eventOf(typ string, body any) event.Event {
	if typ == "" {
		if b, ok := body.(interface{ BaseType() string }); ok {
			typ = b.BaseType()
		}
	}
	return event.Event{Type: typ, Body: body}
}

func encodeMulaw(dst []byte, pcm []int16) { codec.EncodeMulaw(dst, pcm) }

func encodeAlaw(dst []byte, pcm []int16) { codec.EncodeAlaw(dst, pcm) }

// eventBase is event.Base under a name that does not clash with fields.
type eventBase = event.Base
