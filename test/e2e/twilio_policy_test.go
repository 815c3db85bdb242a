package e2e

import (
	"context"
	"path/filepath"
	"testing"
	"time"

	"github.com/tapedeck/tapedeck/internal/call"
	"github.com/tapedeck/tapedeck/internal/store/meta"
)

// receivedPackets is the RTP packets the node received on each of its
// channels, by channel.
func receivedPackets(t *testing.T, n *node) map[call.ChannelID]uint64 {
	t.Helper()
	out := map[call.ChannelID]uint64{}
	for _, c := range n.srv.Calls().Channels() {
		st, err := n.srv.Calls().RTPStats(c.ID)
		if err != nil {
			t.Fatalf("RTP stats of %s: %v", c.ID, err)
		}
		out[c.ID] = uint64(st.Received)
	}
	return out
}

// waitAudioBothWays waits until every channel of the node received
// packets more packets (20 ms each) from its phone.
func waitAudioBothWays(t *testing.T, n *node, packets uint64) {
	t.Helper()
	before := receivedPackets(t, n)
	pollFor(t, 10*time.Second, func() bool {
		now := receivedPackets(t, n)
		if len(now) != len(before) {
			return false
		}
		for id, c := range now {
			if c < before[id]+packets {
				return false
			}
		}
		return true
	}, "audio from both phones")
}

// TestTwilioLiveControlOfPolicyCall: the Twilio API records a call that a
// user's recording policy brings in (Wazo per-user recording: two
// registered baresip phones, 440 Hz and 1000 Hz, call each other through
// tapedeck; the callee's flags record it, with no ARI application or
// script). The call's CallSid is read from the policy recording's catalog
// row; the npm twilio library starts a recording of the call by it,
// pauses it (skip), resumes and stops it with both phones' audio flowing
// between. The API's recording completes with the call's CallSid, a
// length within what the wall clock allows without the paused second,
// both voices and no gap; the policy recording goes on undisturbed
// through all of it and completes at the hangup.
func TestTwilioLiveControlOfPolicyCall(t *testing.T) {
	needTwilioLibrary(t)
	dir := wazoUsers("1001", "1002")
	dir.users[1].CallRecordIncomingInternal = true
	n := startPBX(t, dir)
	acc := defaultAccount(t, n)
	alice := registeredPhone(t, n, "1001", 440, "manual")
	bob := registeredPhone(t, n, "1002", 1000, "manual")
	connectCall(t, n, alice, bob, "1002")
	ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
	defer cancel()

	var policy meta.Recording
	pollFor(t, 10*time.Second, func() bool {
		page, err := n.srv.Catalog().Meta.ListRecordings(ctx, meta.Query{AccountSid: acc.Sid, Limit: 10, SortBy: meta.SortDateCreated})
		if err != nil || len(page.Items) != 1 {
			return false
		}
		policy = page.Items[0]
		return policy.CallSid != "" && policy.Status == meta.StatusInProgress
	}, "the policy recording in progress in the catalog")
	if policy.Source != "policy" || policy.CallerNumber != "1001" || policy.CalledNumber != "1002" {
		t.Fatalf("the call's recording %+v, want the policy's of 1001 -> 1002", policy)
	}
	callSid := policy.CallSid

	t0 := time.Now()
	l := twilioLive(t, n, acc, callSid, "", nil)
	t1 := time.Now()
	sid, _ := l["sid"].(string)
	if !meta.IsRecordingSid(sid) || sid == policy.Sid || l["status"] != "in-progress" || l["callSid"] != callSid ||
		l["source"] != "StartCallRecordingAPI" || l["track"] != "both" || l["channels"] != 1.0 {
		t.Fatalf("start on a policy call: %v", l)
	}
	waitAudioBothWays(t, n, 50)
	t2 := time.Now()
	twilioSetStatus(t, n, acc, callSid, "Twilio.CURRENT", sid, map[string]string{"status": "paused", "pauseBehavior": "skip"}, "pause")
	t3 := time.Now()
	waitAudioBothWays(t, n, 50)
	t4 := time.Now()
	twilioSetStatus(t, n, acc, callSid, "Twilio.CURRENT", sid, map[string]string{"status": "in-progress"}, "resume")
	t5 := time.Now()
	waitAudioBothWays(t, n, 50)
	t6 := time.Now()
	twilioSetStatus(t, n, acc, callSid, sid, sid, map[string]string{"status": "stopped"}, "stop")
	t7 := time.Now()

	var rec meta.Recording
	pollFor(t, 10*time.Second, func() bool {
		var err error
		rec, err = n.srv.Catalog().Meta.Recording(ctx, acc.Sid, sid)
		return err == nil && rec.Status == meta.StatusCompleted
	}, "the API's recording completed in the catalog")
	// Recorded at least while it was surely running ([t1,t2] and [t5,t6]),
	// at most while it may have been ([t0,t3] and [t4,t7]): the paused
	// stretch [t3,t4] (a second of audio at least) is left out.
	lo := (t2.Sub(t1) + t6.Sub(t5)).Seconds() - 0.3
	hi := (t3.Sub(t0) + t7.Sub(t4)).Seconds() + 0.3
	t.Logf("the API's recording: %.2f s, want within [%.2f, %.2f] (paused %.2f s)", rec.Duration, lo, hi, t4.Sub(t3).Seconds())
	if rec.CallSid != callSid || rec.Duration < lo || rec.Duration > hi {
		t.Errorf("the API's recording: %+v, want the policy call's %s, %.2f to %.2f s", rec, callSid, lo, hi)
	}
	rate, pcm := readWAV(t, filepath.Join(n.recDir(), rec.Name+".wav"))
	if got := float64(len(pcm)) / float64(rate); got < lo || got > hi {
		t.Errorf("the API's file holds %.2f s, want %.2f to %.2f", got, lo, hi)
	}
	if zeros := float64(longestZeroRun(pcm)) / float64(rate); zeros > 0.3 {
		t.Errorf("the API's file has %.2f s of silence; the paused stretch should be skipped", zeros)
	}
	if p440, p1000, p700 := goertzel(pcm, 440), goertzel(pcm, 1000), goertzel(pcm, 700); p440 < 20*p700 || p1000 < 20*p700 {
		t.Errorf("the API's recording does not hold both voices: 440 Hz %.0f, 1000 Hz %.0f, 700 Hz (neither) %.0f", p440, p1000, p700)
	}

	// The policy recording was neither paused nor stopped with the API's:
	// it runs on, and completes at the hangup with the whole call.
	if r, err := n.srv.Catalog().Meta.Recording(ctx, acc.Sid, policy.Sid); err != nil || r.Status != meta.StatusInProgress {
		t.Fatalf("the policy recording after the API's stopped: %+v (%v), want in progress", r, err)
	}
	waitAudioBothWays(t, n, 25)
	t8 := time.Now()
	hangupAll(t, n, alice)
	pollFor(t, 10*time.Second, func() bool {
		r, err := n.srv.Catalog().Meta.Recording(ctx, acc.Sid, policy.Sid)
		policy = r
		return err == nil && r.Status == meta.StatusCompleted
	}, "the policy recording completed at the hangup")
	if policy.CallSid != callSid || policy.Duration < t8.Sub(t0).Seconds() {
		t.Errorf("the policy recording: %+v, want the call %s over at least %.2f s", policy, callSid, t8.Sub(t0).Seconds())
	}
	_, ppcm := readWAV(t, filepath.Join(n.recDir(), policy.Name+".wav"))
	if zeros := float64(longestZeroRun(ppcm)) / 8000; zeros > 0.3 {
		t.Errorf("the policy recording has %.2f s of silence: the API's pause reached it", zeros)
	}
	if c := callRows(t, n, acc, callSid); c != 2 {
		t.Errorf("the call's recordings: %d, want the policy's and the API's", c)
	}
}
