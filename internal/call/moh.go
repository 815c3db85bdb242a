package call

import (
	"os"
	"path/filepath"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/tapedeck/tapedeck/internal/sounds"
)

// Music on hold, as Asterisk's res_musiconhold in files mode: a class is a
// directory of sound files played in name order, round and round. The
// files directly in Options.MOHDir are the class "default"; each
// subdirectory is a class of its name. An unknown class plays the default
// one, as Asterisk falls back to it.

// mohCache keeps decoded music files (they are played again and again).
var mohCache sync.Map // path -> *sounds.Clip

// mohFiles lists a class's files (the default class for an unknown one)
// and says which class that is.
func (m *Manager) mohFiles(class string) (string, []string) {
	dir := m.opts.MOHDir
	if dir == "" {
		return "", nil
	}
	if class == "" {
		class = "default"
	}
	list := func(d string) []string {
		ents, err := os.ReadDir(d)
		if err != nil {
			return nil
		}
		var out []string
		for _, e := range ents {
			if e.Type().IsRegular() && !strings.HasPrefix(e.Name(), ".") && filepath.Ext(e.Name()) != "" {
				out = append(out, filepath.Join(d, e.Name()))
			}
		}
		sort.Strings(out)
		return out
	}
	if class != "default" && !strings.ContainsAny(class, `/\`) && !strings.HasPrefix(class, ".") {
		if files := list(filepath.Join(dir, class)); len(files) > 0 {
			return class, files
		}
		m.log.Info("music on hold class not found; playing the default class", "class", class)
	}
	return "default", list(dir)
}

// mohClip decodes (once) one music file.
func mohClip(path string) (*sounds.Clip, error) {
	if c, ok := mohCache.Load(path); ok {
		return c.(*sounds.Clip).Clone(), nil
	}
	c, err := sounds.DecodeFile(path)
	if err != nil {
		return nil, err
	}
	mohCache.Store(path, c)
	return c.Clone(), nil
}

// playMOH sends the class's music, frame by frame at 20 ms, to write until
// stop or gone closes. Files that do not decode are skipped; with none
// left nothing is played.
func (m *Manager) playMOH(class string, write func([]int16), stop, gone <-chan struct{}) {
	name, files := m.mohFiles(class)
	tick := time.NewTicker(20 * time.Millisecond)
	defer tick.Stop()
	frame := make([]int16, 160)
	for {
		played := false
		for _, f := range files {
			clip, err := mohClip(f)
			if err != nil {
				m.log.Warn("music on hold file skipped", "class", name, "file", f, "err", err)
				continue
			}
			played = true
			for {
				select {
				case <-stop:
					return
				case <-gone:
					return
				case <-tick.C:
				}
				n, _ := clip.Read(frame)
				if n == 0 {
					break
				}
				clear(frame[n:])
				write(frame)
			}
		}
		if !played {
			if len(files) == 0 {
				m.log.Warn("no music on hold files", "class", name, "dir", m.opts.MOHDir)
			}
			return
		}
	}
}

// StartMOH plays music on hold to a channel (ARI's channel startMoh),
// replacing music already playing; the channel hears it, or the bridge it
// is in hears it for it alone, like a playback.
//
// With a playback, as in Asterisk (a file stream deactivates the channel's
// generator, the music; ast_bridge_channel_playfile starts it again for a
// channel on hold): a playback that starts on the channel stops its music,
// which it hears no more; after the playback, a channel in a bridge hears
// its music again (the class asked last), one alone does not.
func (m *Manager) StartMOH(id ChannelID, class string) error {
	return m.withChannel(id, func(ch *Channel) error {
		ch.mu.Lock()
		defer ch.mu.Unlock()
		if err := ch.checkLocked(true); err != nil {
			return err
		}
		ch.onHold, ch.mohClass = true, class
		ch.playMOHLocked()
		return nil
	})
}

// playMOHLocked starts the music of ch.mohClass, replacing music playing.
func (ch *Channel) playMOHLocked() {
	if ch.moh != nil {
		close(ch.moh)
	}
	stop := make(chan struct{})
	ch.moh = stop
	out := make([]byte, 160)
	go ch.m.playMOH(ch.mohClass, func(pcm []int16) { ch.writeFrameWith(pcm, out) }, stop, ch.done)
}

// holdMOHForPlayback runs as a playback of the channel starts: the music
// stops; the function returned (nil: none), run once the playback has
// finished, starts it again where Asterisk does, for a bridged channel
// still on hold.
func (ch *Channel) holdMOHForPlayback() func() {
	ch.mu.Lock()
	defer ch.mu.Unlock()
	if ch.moh != nil {
		close(ch.moh)
		ch.moh = nil
	}
	if ch.bridgeOverlay.Load() == nil {
		return nil
	}
	return func() {
		ch.mu.Lock()
		defer ch.mu.Unlock()
		if ch.onHold && !ch.hangingUp {
			ch.playMOHLocked()
		}
	}
}

// StopMOH stops a channel's music on hold (nothing playing is fine, as in
// Asterisk).
func (m *Manager) StopMOH(id ChannelID) error {
	return m.withChannel(id, func(ch *Channel) error {
		ch.mu.Lock()
		defer ch.mu.Unlock()
		if err := ch.checkLocked(true); err != nil {
			return err
		}
		ch.stopMOHLocked()
		return nil
	})
}

func (ch *Channel) stopMOHLocked() {
	ch.onHold = false
	if ch.moh != nil {
		close(ch.moh)
		ch.moh = nil
	}
}

// StartBridgeMOH plays music on hold to everyone in a bridge (ARI's bridge
// startMoh), replacing music already playing. A playback on the bridge is
// heard with the music, which goes on (see Bridge.announcerLocked).
func (m *Manager) StartBridgeMOH(id BridgeID, class string) error {
	b, err := m.bridge(string(id))
	if err != nil {
		return err
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.destroyed {
		return errf(ErrBridgeNotFound, "Bridge not found")
	}
	b.announcerLocked()
	b.startTickerLocked()
	if b.moh != nil {
		close(b.moh)
	}
	stop := make(chan struct{})
	b.moh = stop
	go m.playMOH(class, b.writeMusic, stop, b.done)
	return nil
}

// StopBridgeMOH stops a bridge's music on hold; a bridge playing none
// answers a conflict, as Asterisk does.
func (m *Manager) StopBridgeMOH(id BridgeID) error {
	b, err := m.bridge(string(id))
	if err != nil {
		return err
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.destroyed {
		return errf(ErrBridgeNotFound, "Bridge not found")
	}
	if b.moh == nil {
		return errf(ErrConflict, "Bridge isn't playing music on hold")
	}
	close(b.moh)
	b.moh = nil
	return nil
}
