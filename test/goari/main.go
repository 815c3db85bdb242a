// Command goari is a CyCoreSystems/ari (v5) application, written the way
// that library's users write one for a single Asterisk: it connects with
// client/native to ONE tapedeck node, and answers and records the first
// CALLS calls entering its Stasis application, wherever they landed.
//
// It is its own Go module so that the product's go.mod (and govulncheck)
// never see ari/v5 and its dependencies; the end-to-end tests build it
// (TestClusterGoAriRecordsCallsOnBothNodes).
//
// Environment:
//
//	ARI_URL          http://127.0.0.1:PORT/ari of the node (required)
//	ARI_WSURL        ws://127.0.0.1:PORT/ari/events (required)
//	ARI_USERNAME / ARI_PASSWORD  credentials (default asterisk / asterisk)
//	ARI_APPLICATION  the Stasis application's name (required)
//	REC_NAME         recording names: the n-th call's (from 1) is REC_NAME-n (required)
//	CALLS            how many calls to answer and record (default 1)
//	RECORD_MS        stop each recording this long after RecordingStarted,
//	                 unless the caller hangs up first (default 1500)
//	TIMEOUT_MS       give up (exit 1) after this long (default 30000)
//
// Output: one JSON object per line on stdout:
//
//	{"type":"READY","entity_id":..}        connected; entity_id from /asterisk/info
//	{"type":<event>,"asterisk_id":..,"channel":..,"recording":{..}}  every event the bus gets
//	{"type":"ANSWERED","channel":..}
//	{"type":"RECORDING","channel":..,"name":..}   the record request was accepted
//	{"type":"STOPPED","name":..}                  LiveRecordingHandle.Stop returned
//	{"type":"FINISHED","channel":..,"name":..,"duration":s}  the handle's RecordingFinished
//	{"type":"STORED","name":..,"format":..}       StoredRecordingHandle.Data of it
//	{"type":"HUNGUP","channel":..}
//	{"type":"ENDED","channel":..}                 the handle's StasisEnd
//	{"type":"ERROR","message":..}                 then exit 1
//
// Exit status 0 once every call it took has ended.
package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"strconv"
	"sync"
	"time"

	"github.com/CyCoreSystems/ari/v5"
	"github.com/CyCoreSystems/ari/v5/client/native"
)

var outMu sync.Mutex

func emit(v map[string]any) {
	b, _ := json.Marshal(v)
	outMu.Lock()
	defer outMu.Unlock()
	os.Stdout.Write(append(b, '\n'))
}

func fail(err error) {
	emit(map[string]any{"type": "ERROR", "message": err.Error()})
	os.Exit(1)
}

func envInt(name string, def int) int {
	if n, err := strconv.Atoi(os.Getenv(name)); err == nil && n > 0 {
		return n
	}
	return def
}

func envOr(name, def string) string {
	if v := os.Getenv(name); v != "" {
		return v
	}
	return def
}

func main() {
	app, recName := os.Getenv("ARI_APPLICATION"), os.Getenv("REC_NAME")
	if os.Getenv("ARI_URL") == "" || os.Getenv("ARI_WSURL") == "" || app == "" || recName == "" {
		fail(errors.New("ARI_URL, ARI_WSURL, ARI_APPLICATION and REC_NAME are required"))
	}
	calls := envInt("CALLS", 1)
	recordFor := time.Duration(envInt("RECORD_MS", 1500)) * time.Millisecond
	timeout := time.Duration(envInt("TIMEOUT_MS", 30000)) * time.Millisecond
	time.AfterFunc(timeout, func() { fail(fmt.Errorf("timeout after %v", timeout)) })

	cl, err := native.Connect(&native.Options{
		Application:  app,
		URL:          os.Getenv("ARI_URL"),
		WebsocketURL: os.Getenv("ARI_WSURL"),
		Username:     envOr("ARI_USERNAME", "asterisk"),
		Password:     envOr("ARI_PASSWORD", "asterisk"),
	})
	if err != nil {
		fail(fmt.Errorf("connect: %w", err))
	}
	defer cl.Close()
	info, err := cl.Asterisk().Info(nil)
	if err != nil {
		fail(fmt.Errorf("asterisk info: %w", err))
	}

	// Every event the client decodes, as the test reads them.
	all := cl.Bus().Subscribe(nil, ari.Events.All)
	go func() {
		for e := range all.Events() {
			line := map[string]any{"type": e.GetType(), "asterisk_id": e.GetNode(), "application": e.GetApplication()}
			switch v := e.(type) {
			case *ari.StasisStart:
				line["channel"] = v.Channel.ID
			case *ari.StasisEnd:
				line["channel"] = v.Channel.ID
			case *ari.RecordingStarted:
				line["recording"] = map[string]any{"name": v.Recording.Name, "state": v.Recording.State}
			case *ari.RecordingFinished:
				line["recording"] = map[string]any{"name": v.Recording.Name, "state": v.Recording.State,
					"duration": time.Duration(v.Recording.Duration).Seconds()}
			}
			emit(line)
		}
	}()

	starts := cl.Bus().Subscribe(nil, ari.Events.StasisStart)
	emit(map[string]any{"type": "READY", "entity_id": info.SystemInfo.EntityID})

	ctx := context.Background()
	var wg sync.WaitGroup
	for n := 1; n <= calls; n++ {
		e := <-starts.Events()
		v := e.(*ari.StasisStart)
		h := cl.Channel().Get(v.Key(ari.ChannelKey, v.Channel.ID))
		wg.Add(1)
		go func(name string) {
			defer wg.Done()
			if err := record(ctx, h, name, recordFor); err != nil {
				fail(fmt.Errorf("channel %s: %w", h.ID(), err))
			}
		}(fmt.Sprintf("%s-%d", recName, n))
	}
	starts.Cancel()
	wg.Wait()
}

// record answers the channel, records it as name until recordFor has
// passed or the caller hangs up, then hangs up.
func record(ctx context.Context, h *ari.ChannelHandle, name string, recordFor time.Duration) error {
	end := h.Subscribe(ari.Events.StasisEnd)
	defer end.Cancel()

	if err := h.Answer(); err != nil {
		return fmt.Errorf("answer: %w", err)
	}
	emit(map[string]any{"type": "ANSWERED", "channel": h.ID()})

	rec, err := h.StageRecord(name, &ari.RecordingOptions{Format: "wav", Exists: "overwrite"})
	if err != nil {
		return err
	}
	started := rec.Subscribe(ari.Events.RecordingStarted)
	defer started.Cancel()
	finished := rec.Subscribe(ari.Events.RecordingFinished, ari.Events.RecordingFailed)
	defer finished.Cancel()
	if err := rec.Exec(); err != nil {
		return fmt.Errorf("record: %w", err)
	}
	emit(map[string]any{"type": "RECORDING", "channel": h.ID(), "name": name})

	select {
	case <-started.Events():
	case <-time.After(5 * time.Second):
		return errors.New("no RecordingStarted for " + name)
	}
	callerLeft := false
	select {
	case <-time.After(recordFor):
		if err := rec.Stop(); err != nil {
			return fmt.Errorf("stop %s: %w", name, err)
		}
		emit(map[string]any{"type": "STOPPED", "name": name})
	case <-end.Events():
		callerLeft = true
	}
	select {
	case e := <-finished.Events():
		f, ok := e.(*ari.RecordingFinished)
		if !ok {
			return fmt.Errorf("recording %s: %s", name, e.GetType())
		}
		emit(map[string]any{"type": "FINISHED", "channel": h.ID(), "name": f.Recording.Name,
			"duration": time.Duration(f.Recording.Duration).Seconds()})
	case <-time.After(5 * time.Second):
		return errors.New("no RecordingFinished for " + name)
	}
	st, err := rec.Stored().Data()
	if err != nil {
		return fmt.Errorf("stored %s: %w", name, err)
	}
	emit(map[string]any{"type": "STORED", "name": st.Name, "format": st.Format})
	if callerLeft {
		emit(map[string]any{"type": "ENDED", "channel": h.ID()})
		return nil
	}

	if err := h.Hangup(); err != nil {
		return fmt.Errorf("hangup: %w", err)
	}
	emit(map[string]any{"type": "HUNGUP", "channel": h.ID()})
	select {
	case <-end.Events():
		emit(map[string]any{"type": "ENDED", "channel": h.ID()})
	case <-ctx.Done():
		return ctx.Err()
	case <-time.After(5 * time.Second):
		return errors.New("no StasisEnd after hangup")
	}
	return nil
}
