// Package call is tapedeck's call model: channels (one per call leg), their
// Asterisk states, variables and Stasis applications, bridges, playbacks and
// recordings, and the Manager that implements Calls, the interface every API
// drives by typed ids (calls.go). It joins SIP dialogs to RTP sessions and
// publishes ARI events on the bus.
//
// # Errors
//
// Every operation returns one of the kinds in errors.go (ErrNotFound,
// ErrNotInApplication, ErrInvalidState, ErrConflict, ErrInvalidArgument,
// ErrUnsupported, ErrUnavailable), wrapped with Asterisk's wording of the
// detail; errors.Is tells the kind. The package knows no protocol status:
// each API maps the kinds to its own codes in one table.
//
// # Lock order
//
// Locks are taken in this order, never the reverse (as nats'
// locksordering.txt):
//
//		Bridge.mu -> Channel.mu -> LiveRecording.mu, Playback.mu -> event.Bus's locks
//
//	  - Bridge.mu before Channel.mu: a bridge reads its members' application
//	    and snapshots them while publishing (publishLocked, AddChannel). A
//	    channel never takes its bridge's lock while holding its own; it reads
//	    ch.bridge under ch.mu, lets go, then calls into the bridge.
//	  - Channel.mu before LiveRecording.mu and Playback.mu: events of one
//	    channel are published under its lock to keep their order, and a
//	    recording's or playback's snapshot (JSON) is taken inside.
//	  - Events are published (event.Bus.Publish, Subscribe) with a Channel or
//	    Bridge lock held; the bus never calls back into this package.
//	  - Manager.mu, recMu, pbMu and brMu guard the id -> object maps only and
//	    are leaves: held for one map access, with nothing else taken under
//	    them. Lookups copy the pointer out and let go before using it.
//	  - The metrics' rtpCollector.mu comes before Manager.mu (metrics.go):
//	    a scrape reads the live channels' RTP statistics under both, and
//	    Manager.remove moves a channel's figures to the ended totals under
//	    both. Nothing else is taken under them.
//	  - SIP requests (answer, BYE) and catalog writes run with none of these
//	    locks held. A recording's catalog writes are ordered by its catMu,
//	    held across the write and taken with none of the others held
//	    (catalogInfo takes Channel.mu under it). The media path (OnAudio) takes no Channel or Bridge lock;
//	    a recording's writer still writes under LiveRecording.mu (the
//	    recording pipeline of issue 13 takes that I/O off the lock).
package call
