package e2e

import (
	"bytes"
	"context"
	"encoding/json"
	"strings"
	"testing"
	"time"

	"github.com/tapedeck/tapedeck/internal/config"
	"github.com/tapedeck/tapedeck/internal/testutil/versitygw"
)

// sharedNodes starts two nodes on one PostgreSQL database and one S3
// bucket (versitygw), as a cluster runs.
func sharedNodes(t *testing.T) (a, b *node, gw *versitygw.Server, bucket string) {
	t.Helper()
	dsn := pgFreshDatabase(t)
	gw = versitygw.Shared(t)
	bucket = gw.NewBucket(t)
	start := func(id string) *node {
		return startNode(t, func(c *config.Config) {
			c.NodeID = id
			c.Catalog.Database = dsn
			c.Catalog.S3 = config.S3{Endpoint: gw.Endpoint(), AccessKey: versitygw.AccessKey,
				SecretKey: versitygw.SecretKey, Bucket: bucket, KeepLocal: false}
		})
	}
	return start("node-a"), start("node-b"), gw, bucket
}

func storedNames(t *testing.T, n *node) []string {
	t.Helper()
	var list []struct{ Name string }
	if err := json.Unmarshal(n.mustDo("GET", "/recordings/stored", 200), &list); err != nil {
		t.Fatal(err)
	}
	var out []string
	for _, r := range list {
		out = append(out, r.Name)
	}
	return out
}

func hasName(names []string, name string) bool {
	for _, n := range names {
		if n == name {
			return true
		}
	}
	return false
}

// TestNodesShareRecordings: two nodes on one PostgreSQL catalog and one S3
// bucket act as one Asterisk for ARI and Restcomm clients. A recording
// made on A is listed, downloaded and deleted through B (ARI stored
// recordings and Restcomm); a name A is recording under, or has stored, is
// B's 409 as it is A's (claimed in the database), and free again once A's
// recording has ended for ifExists=overwrite.
func TestNodesShareRecordings(t *testing.T) {
	a, b, gw, bucket := sharedNodes(t)
	evA, evB := a.connect("test"), b.connect("test")
	acc := defaultAccount(t, a)
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()

	// Made on A, uploaded to S3.
	recordCall(t, a, evA, "350", "shared/one", 1000*time.Millisecond)
	row, err := a.srv.Catalog().Meta.RecordingByName(ctx, "shared/one")
	if err != nil || row.Node != "node-a" {
		t.Fatalf("row: %+v, %v", row, err)
	}
	pollFor(t, 15*time.Second, func() bool {
		row, err = a.srv.Catalog().Meta.RecordingByName(ctx, "shared/one")
		return err == nil && row.S3URI != ""
	}, "A's recording uploaded to S3")
	key := strings.TrimPrefix(row.S3URI, "s3://"+bucket+"/")

	// Listed and served by B, the same bytes as A serves.
	if names := storedNames(t, b); !hasName(names, "shared/one") {
		t.Fatalf("B's /recordings/stored: %v", names)
	}
	fromA := a.mustDo("GET", "/recordings/stored/"+urlq("shared/one")+"/file", 200)
	fromB := b.mustDo("GET", "/recordings/stored/"+urlq("shared/one")+"/file", 200)
	if len(fromA) < 8000 || !bytes.Equal(fromA, fromB) {
		t.Fatalf("file: %d bytes from A, %d from B", len(fromA), len(fromB))
	}
	root := "/restcomm/2012-04-24/Accounts/" + acc.Sid + "/Recordings"
	if code, media := rc(t, b, acc, "GET", root+"/"+row.Sid+".wav"); code != 200 || !bytes.Equal(media, fromA) {
		t.Fatalf("Restcomm download through B: %d, %d bytes", code, len(media))
	}

	// Names are unique across the nodes: A records "shared/live"...
	phoneA, phoneB := newPhone(t, "udp"), newPhone(t, "udp")
	idA, _ := recordingCall(t, a, evA, phoneA, "350", "name="+urlq("shared/live")+"&format=wav")
	idB, callB := answeredCall(t, b, evB, phoneB, "350")
	for _, q := range []string{
		"name=" + urlq("shared/live") + "&format=wav&ifExists=overwrite", // in progress on A
		"name=" + urlq("shared/one") + "&format=wav&ifExists=fail",       // stored by A
	} {
		if code, body := b.do("POST", "/channels/"+idB+"/record?"+q, nil); code != 409 {
			t.Errorf("B records %s: %d %s, want 409", q, code, body)
		}
	}
	// ... until A's recording ends.
	a.mustDo("POST", "/recordings/live/"+urlq("shared/live")+"/stop", 204)
	evA.skipTo("RecordingFinished", 5*time.Second)
	b.mustDo("POST", "/channels/"+idB+"/record?name="+urlq("shared/live")+"&format=wav&ifExists=overwrite", 201)
	evB.skipTo("RecordingStarted", 5*time.Second)
	must(t, callB.SendAudio(ctx, sweep(4000)))
	waitRx(t, b, idB, 25)
	if code, body := a.do("POST", "/channels/"+idA+"/record?name="+urlq("shared/live")+"&format=wav&ifExists=overwrite", nil); code != 409 {
		t.Errorf("A records the name B is recording under: %d %s, want 409", code, body)
	}
	b.mustDo("POST", "/recordings/live/"+urlq("shared/live")+"/stop", 204)
	evB.skipTo("RecordingFinished", 5*time.Second)

	// Deleted through B (ARI): gone for A and from the bucket.
	b.mustDo("DELETE", "/recordings/stored/"+urlq("shared/one"), 204)
	a.mustDo("GET", "/recordings/stored/"+urlq("shared/one"), 404)
	if ok, err := gw.ObjectExists(ctx, bucket, key); err != nil || ok {
		t.Errorf("object %s after the delete through B: exists=%v err=%v", key, ok, err)
	}

	// Restcomm delete through A of the recording B made last.
	live, err := b.srv.Catalog().Meta.RecordingByName(ctx, "shared/live")
	if err != nil || live.Node != "node-b" {
		t.Fatalf("shared/live row: %+v, %v", live, err)
	}
	pollFor(t, 15*time.Second, func() bool {
		live, err = b.srv.Catalog().Meta.RecordingByName(ctx, "shared/live")
		return err == nil && live.S3URI != ""
	}, "B's recording uploaded to S3")
	if code, body := rc(t, a, acc, "DELETE", root+"/"+live.Sid+".json"); code != 204 {
		t.Fatalf("Restcomm delete through A: %d %s", code, body)
	}
	b.mustDo("GET", "/recordings/stored/"+urlq("shared/live"), 404)
	if names := storedNames(t, b); hasName(names, "shared/live") || hasName(names, "shared/one") {
		t.Errorf("B still lists %v", names)
	}
}
