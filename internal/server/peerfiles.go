package server

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"strconv"
	"sync"
	"time"

	"github.com/nats-io/nats.go"

	"github.com/tapedeck/tapedeck/internal/catalog"
	"github.com/tapedeck/tapedeck/internal/contain"
	"github.com/tapedeck/tapedeck/internal/store/blob"
	"github.com/tapedeck/tapedeck/internal/store/meta"
)

// Recordings kept on a node's own disk (no object storage) are served and
// deleted through the other nodes over NATS request/reply, on
// {prefix}tapedeck.file.{node id}: the node that keeps the file answers
// "stat", "read" (one chunk at an offset: Range requests and streaming
// without holding the file in memory) and "delete". The request names the
// recording's Sid and its file's key; the owner serves only the file its
// catalog row names (catalog.Service.OwnFile). NATS, not a node's HTTP
// listener: no address to announce or credentials to share, and the same
// trust as the ARI relay.

const (
	// fileChunk is the most bytes one "read" answer carries (NATS's
	// max_payload is 1 MiB by default).
	fileChunk = 256 << 10
	// fileTimeout bounds one request to the owner.
	fileTimeout = 5 * time.Second
	// fileWorkers bounds the requests a node answers at once.
	fileWorkers = 16
)

// NATS headers of the file requests and answers.
const (
	hdrOp     = "Tapedeck-Op"
	hdrSid    = "Tapedeck-Sid"
	hdrKey    = "Tapedeck-Key"
	hdrOffset = "Tapedeck-Offset"
	hdrLength = "Tapedeck-Length"
	hdrStatus = "Tapedeck-Status" // 200, 404, 500
	hdrError  = "Tapedeck-Error"
	hdrSize   = "Tapedeck-Size"
	hdrMod    = "Tapedeck-Mod"
)

// peerFiles implements catalog.PeerFiles, and answers the other nodes'
// requests for this node's files.
type peerFiles struct {
	nc     *nats.Conn
	prefix string
	svc    *catalog.Service
	log    *slog.Logger
	sub    *nats.Subscription
	sem    chan struct{}
	chunk  int // bytes a read asks for (fileChunk)
}

func fileSubject(prefix, nodeID string) string {
	return prefix + "tapedeck.file." + subjectToken(nodeID)
}

func startPeerFiles(nc *nats.Conn, prefix, nodeID string, svc *catalog.Service, log *slog.Logger) (*peerFiles, error) {
	p := &peerFiles{nc: nc, prefix: prefix, svc: svc, log: log, sem: make(chan struct{}, fileWorkers), chunk: fileChunk}
	sub, err := nc.Subscribe(fileSubject(prefix, nodeID), func(m *nats.Msg) { go p.answer(m) })
	if err != nil {
		return nil, fmt.Errorf("subscribe %s: %w", fileSubject(prefix, nodeID), err)
	}
	_ = sub.SetPendingLimits(4096, 16<<20)
	p.sub = sub
	return p, nil
}

func (p *peerFiles) close() {
	if p != nil && p.sub != nil {
		_ = p.sub.Unsubscribe()
	}
}

// answer serves one request of another node.
func (p *peerFiles) answer(m *nats.Msg) {
	p.sem <- struct{}{}
	defer func() { <-p.sem }()
	reply := nats.NewMsg(m.Reply)
	fail := func(status int, err error) {
		reply.Header.Set(hdrStatus, strconv.Itoa(status))
		reply.Header.Set(hdrError, err.Error())
		_ = m.RespondMsg(reply)
	}
	defer contain.Recover(p.log, "cluster file request", func() { fail(500, errors.New("internal error")) })
	if m.Header == nil {
		fail(400, errors.New("no request headers"))
		return
	}
	ctx, cancel := context.WithTimeout(context.Background(), fileTimeout)
	defer cancel()
	sid, key := m.Header.Get(hdrSid), m.Header.Get(hdrKey)
	status := func(err error) int {
		switch {
		case errors.Is(err, catalog.ErrNotFound):
			return 404
		case errors.Is(err, meta.ErrConflict):
			return 409
		}
		return 500
	}
	switch op := m.Header.Get(hdrOp); op {
	case "delete":
		if err := p.svc.DeleteOwnFile(ctx, sid, key); err != nil {
			fail(status(err), err)
			return
		}
		p.log.Info("cluster: deleted a recording's file for another node", "sid", sid, "key", key)
	case "stat", "read":
		r, err := p.svc.OwnFile(ctx, sid, key)
		if err != nil {
			fail(status(err), err)
			return
		}
		defer r.Close()
		reply.Header.Set(hdrSize, strconv.FormatInt(r.Size(), 10))
		reply.Header.Set(hdrMod, r.ModTime().UTC().Format(time.RFC3339Nano))
		if op == "read" {
			off, err1 := strconv.ParseInt(m.Header.Get(hdrOffset), 10, 64)
			n, err2 := strconv.Atoi(m.Header.Get(hdrLength))
			if err1 != nil || err2 != nil || off < 0 || n <= 0 || n > fileChunk {
				fail(400, fmt.Errorf("bad offset %q or length %q", m.Header.Get(hdrOffset), m.Header.Get(hdrLength)))
				return
			}
			if _, err := r.Seek(off, io.SeekStart); err != nil {
				fail(500, err)
				return
			}
			buf := make([]byte, n)
			got, err := io.ReadFull(r, buf)
			if err != nil && !errors.Is(err, io.ErrUnexpectedEOF) && !errors.Is(err, io.EOF) {
				fail(500, err)
				return
			}
			reply.Data = buf[:got]
		}
	default:
		fail(400, fmt.Errorf("unknown operation %q", op))
		return
	}
	reply.Header.Set(hdrStatus, "200")
	_ = m.RespondMsg(reply)
}

// request asks row.Node for op on row's file.
func (p *peerFiles) request(ctx context.Context, row meta.Recording, op string, off int64, n int) (*nats.Msg, error) {
	req := nats.NewMsg(fileSubject(p.prefix, row.Node))
	req.Header.Set(hdrOp, op)
	req.Header.Set(hdrSid, row.Sid)
	req.Header.Set(hdrKey, row.FilePath)
	if op == "read" {
		req.Header.Set(hdrOffset, strconv.FormatInt(off, 10))
		req.Header.Set(hdrLength, strconv.Itoa(n))
	}
	ctx, cancel := context.WithTimeout(ctx, fileTimeout)
	defer cancel()
	res, err := p.nc.RequestMsgWithContext(ctx, req)
	if err != nil {
		if ctx.Err() != nil && !errors.Is(ctx.Err(), context.DeadlineExceeded) {
			return nil, err // the client went away
		}
		return nil, fmt.Errorf("recording %s is on node %s's disk, and node %s does not answer (%v): %w", row.Sid, row.Node, row.Node, err, catalog.ErrUnavailable)
	}
	switch st := res.Header.Get(hdrStatus); st {
	case "200":
		return res, nil
	case "404":
		return nil, fmt.Errorf("node %s: %s: %w", row.Node, res.Header.Get(hdrError), catalog.ErrNotFound)
	case "409":
		return nil, fmt.Errorf("node %s: %s: %w", row.Node, res.Header.Get(hdrError), meta.ErrConflict)
	default:
		return nil, fmt.Errorf("node %s answered %s: %s", row.Node, st, res.Header.Get(hdrError))
	}
}

// OpenFile implements catalog.PeerFiles.
func (p *peerFiles) OpenFile(ctx context.Context, row meta.Recording) (blob.Reader, error) {
	res, err := p.request(ctx, row, "stat", 0, 0)
	if err != nil {
		return nil, err
	}
	size, err := strconv.ParseInt(res.Header.Get(hdrSize), 10, 64)
	if err != nil || size < 0 {
		return nil, fmt.Errorf("node %s: bad size %q", row.Node, res.Header.Get(hdrSize))
	}
	mod, _ := time.Parse(time.RFC3339Nano, res.Header.Get(hdrMod))
	return &peerReader{p: p, ctx: ctx, row: row, size: size, mod: mod}, nil
}

// DeleteFile implements catalog.PeerFiles.
func (p *peerFiles) DeleteFile(ctx context.Context, row meta.Recording) error {
	_, err := p.request(ctx, row, "delete", 0, 0)
	return err
}

// peerReader reads another node's file a chunk at a time: at most one
// chunk is held, and Seek only moves the offset (Range requests).
type peerReader struct {
	p    *peerFiles
	ctx  context.Context
	row  meta.Recording
	size int64
	mod  time.Time

	mu     sync.Mutex
	off    int64
	bufOff int64
	buf    []byte
	// moved is the file where the row names it now, once the owner's copy
	// went between the stat and a read (its upload ended: the owner
	// removes the local copy once the row names the object).
	moved io.ReadSeekCloser
}

func (r *peerReader) Size() int64         { return r.size }
func (r *peerReader) ModTime() time.Time  { return r.mod }
func (r *peerReader) ContentType() string { return blob.ContentTypeFor(r.row.FilePath) }

func (r *peerReader) Close() error {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.moved != nil {
		return r.moved.Close()
	}
	return nil
}

func (r *peerReader) Read(b []byte) (int, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.off >= r.size {
		return 0, io.EOF
	}
	if r.moved != nil {
		n, err := r.moved.Read(b)
		r.off += int64(n)
		return n, err
	}
	if r.off < r.bufOff || r.off >= r.bufOff+int64(len(r.buf)) {
		chunk := int64(r.p.chunk)
		if mp := r.p.nc.MaxPayload(); mp > 8192 && chunk > mp-4096 {
			chunk = mp - 4096 // a NATS server with a smaller max_payload
		}
		n := int(min(chunk, r.size-r.off))
		res, err := r.p.request(r.ctx, r.row, "read", r.off, n)
		if errors.Is(err, catalog.ErrNotFound) && r.follow() {
			n, err := r.moved.Read(b)
			r.off += int64(n)
			return n, err
		}
		if err != nil {
			return 0, err
		}
		if len(res.Data) == 0 {
			// The file is shorter than it was at the stat: it changed.
			return 0, fmt.Errorf("node %s: recording %s ends at %d bytes, not %d: %w", r.row.Node, r.row.Sid, r.off, r.size, io.ErrUnexpectedEOF)
		}
		r.bufOff, r.buf = r.off, res.Data
	}
	n := copy(b, r.buf[r.off-r.bufOff:])
	r.off += int64(n)
	return n, nil
}

func (r *peerReader) Seek(offset int64, whence int) (int64, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	switch whence {
	case io.SeekStart:
	case io.SeekCurrent:
		offset += r.off
	case io.SeekEnd:
		offset += r.size
	default:
		return 0, errors.New("peer file: bad whence")
	}
	if offset < 0 {
		return 0, errors.New("peer file: negative offset")
	}
	if r.moved != nil {
		if _, err := r.moved.Seek(offset, io.SeekStart); err != nil {
			return 0, err
		}
	}
	r.off = offset
	return offset, nil
}

// follow opens the file where the row names it now, at the offset, when
// the owner's copy is gone (r.mu held): a download that began before the
// recording's upload ended goes on from object storage instead of
// failing after its headers. The object must have the size the owner
// stated.
func (r *peerReader) follow() bool {
	if r.p.svc == nil {
		return false
	}
	m, err := r.p.svc.Open(r.ctx, r.row, "")
	if err != nil {
		return false
	}
	if m.Size != r.size {
		m.Close()
		return false
	}
	if _, err := m.Seek(r.off, io.SeekStart); err != nil {
		m.Close()
		return false
	}
	r.moved = m
	return true
}
