package ozeki

import (
	"context"
	"errors"
	"fmt"
	"net/url"
	"strconv"
	"time"

	"github.com/tapedeck/tapedeck/internal/catalog"
	"github.com/tapedeck/tapedeck/internal/store/meta"
	"github.com/tapedeck/tapedeck/internal/webhook"
)

// RecordCompleted durability: a Record's FinishedUrl is kept with the
// recording's catalog row from its first write (meta.Recording.Callback),
// and its RecordCompleted is queued in the transaction that writes the
// final row (meta.FinalRows, through the catalog's FinalNotices), with the
// row's EndReason as its Reason. A crash between the row and the
// notification can no longer lose it: the restart that settles the killed
// run's row (or the node that settles a lost node's) queues it from the
// row, once.

// RecordCompleted is the notification of a finished Record, and the Kind
// of the callback its recording keeps in the catalog.
const RecordCompleted = "RecordCompleted"

// keptCallback is what a Record keeps with its row for its RecordCompleted
// (nil without a FinishedUrl, or without a sender to send it).
func (a *API) keptCallback(r RecordRequest) *meta.StatusCallback {
	if r.FinishedURL == "" || a.o.Webhook == nil {
		return nil
	}
	return &meta.StatusCallback{Kind: RecordCompleted, URL: r.FinishedURL, Method: "POST", CallID: string(r.CallID)}
}

// FinalNotices makes the RecordCompleted of a recording this API started
// (the catalog's FinalNotices and LostNotices), from the callback kept
// with its row: the catalog queues it in the transaction that writes the
// final row (or settles a lost node's), so it is queued once, with the
// row, or not at all and again at the next try. Only recordings started
// by a command (Source command) can keep one: the end of any other costs
// no look-up. A callback that cannot be read is an error (the row waits
// for the next try); one that can never be sent (no webhooks here, a
// target the allow-list now refuses) is logged and left out.
func (a *API) FinalNotices(ctx context.Context, row meta.Recording) ([]meta.OutboxItem, error) {
	if a.o.Catalog == nil || row.Sid == "" || row.Status.Live() || row.Source != meta.SourceCommand {
		return nil, nil
	}
	sc, ok := a.o.Catalog.Meta.(meta.StatusCallbacks)
	if !ok {
		return nil, nil
	}
	kept, has, err := sc.StatusCallback(ctx, row.Sid)
	if errors.Is(err, meta.ErrNotFound) {
		return nil, nil // a row written final at once: none kept
	}
	if err != nil {
		return nil, fmt.Errorf("recording %s: its RecordCompleted callback: %w", row.Sid, err)
	}
	if !has || kept.Kind != RecordCompleted {
		return nil, nil
	}
	if a.o.Webhook == nil {
		a.o.Log.Error("ozeki: a recording has a FinishedUrl but this node sends no webhooks", "sid", row.Sid, "url", kept.URL)
		return nil, nil
	}
	it, err := a.o.Webhook.Prepare(ctx, webhook.Notification{Kind: RecordCompleted, CallID: kept.CallID, URL: kept.URL,
		Form: a.completedForm(kept.CallID, row)})
	if err != nil {
		a.o.Log.Error("ozeki: a recording's RecordCompleted cannot be sent", "sid", row.Sid, "url", kept.URL, "err", err)
		return nil, nil
	}
	return []meta.OutboxItem{it}, nil
}

// completedForm is RecordCompleted's form for a final row, as
// recordFinished makes it from memory.
func (a *API) completedForm(callID string, row meta.Recording) url.Values {
	state := "done"
	switch {
	case row.Status == meta.StatusFailed:
		state = "failed"
	case row.StatusDetail == catalog.DetailEndedBeforeStart:
		// Ended before it began (its call hung up before its file was
		// open): canceled, as the recording itself, with no file.
		state = "canceled"
	}
	form := url.Values{
		"NotificationName": {RecordCompleted},
		"CallId":           {callID},
		"Duration":         {strconv.Itoa(int(row.Duration))},
		"Format":           {row.Format},
		"Reason":           {row.EndReason},
		"State":            {state},
	}
	if state != "done" {
		form.Set("Cause", row.StatusDetail)
	} else {
		form.Set("RecordURL", a.recordURL(row.Name, a.o.Catalog.LocalPath(row)))
	}
	return form
}

// queuedWithRow reports whether the RecordCompleted of the recording name
// is the catalog's to queue (FinalNotices): its final row was written
// with it queued (the kept callback is cleared then), or its final write
// is pending and its retry (Reconcile) queues it. Only a final row whose
// callback is still kept (written without FinalNotices) or a catalog that
// does not queue them leaves it to this node's memory.
func (a *API) queuedWithRow(name string) bool {
	if a.o.Catalog == nil || a.o.Catalog.FinalNotices == nil {
		return false
	}
	sc, ok := a.o.Catalog.Meta.(meta.StatusCallbacks)
	if _, fr := a.o.Catalog.Meta.(meta.FinalRows); !ok || !fr {
		return false
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	row, err := a.o.Catalog.Meta.RecordingByName(ctx, name)
	switch {
	case errors.Is(err, meta.ErrNotFound):
		a.o.Log.Warn("ozeki: a finished recording has no catalog row yet; its RecordCompleted is queued with it when the catalog's retry writes it", "name", name)
		return true
	case err != nil:
		a.o.Log.Error("ozeki: was RecordCompleted queued with the row? Left to the catalog", "name", name, "err", err)
		return true
	case row.Status.Live():
		a.o.Log.Warn("ozeki: a finished recording's final row is not written yet; its RecordCompleted is queued with it by the catalog's retry", "name", name, "sid", row.Sid)
		return true
	}
	_, has, err := sc.StatusCallback(ctx, row.Sid)
	if err != nil {
		a.o.Log.Error("ozeki: was RecordCompleted queued with the row? Left to the catalog", "name", name, "err", err)
		return true
	}
	return !has
}
