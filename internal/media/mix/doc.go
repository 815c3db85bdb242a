// Package mix is the audio core of a mixing bridge (in the manner of
// Asterisk's softmix) for 8 kHz mono 16-bit linear PCM in 20 ms frames.
//
// A Mixer is driven by exactly one 20 ms clock owned by the caller, which
// calls Tick (or TickRecord) once per period; the package starts no
// goroutines and never reads the wall clock. Each Participant owns a small
// jitter/play-out buffer fed by its RTP reader goroutine through Push and
// positioned purely by RTP timestamp: gaps are filled with silence from the
// timestamps, never from wall time.
//
// Play-out buffer policy (per participant, in samples of 1/8000 s):
//
//   - Priming: after a (re)start nothing is played until the buffered span
//     (highest timestamp written minus the play-out point) reaches the target
//     depth of 40 ms (2 frames). While priming a participant contributes
//     silence and this is not counted as an underrun. Before the first frame
//     has been played, a packet older than the current start extends the
//     buffer backwards (reordering at stream start is not mistaken for
//     lateness).
//   - Playing: each tick plays exactly one 20 ms frame at the play-out point
//     and advances it by 160 samples. Samples that never arrived play as
//     silence (a lost packet is a silent frame at its own place); a frame with
//     no samples at all counts as lost.
//   - Underrun: when a tick finds nothing at or beyond the play-out point the
//     tick is silent, Underruns is incremented and the buffer re-primes to
//     the target depth; the play-out point is kept, so packets that were only
//     delayed still play in order. When play-out (re)starts, leading frames in
//     which nothing arrived (a lost burst the underrun already covered in real
//     time, or a silence-suppression pause) are skipped while the depth stays
//     at or above the target, so a loss does not add permanent delay. Those
//     skipped frames count as lost (FramesLost), up to the underrun's
//     silent ticks: that silence was played for them.
//   - Overflow: after Trim (Mixer.Trim, called by the driver of the ticks
//     once it has caught up with real time) the buffered span is at most
//     120 ms (6 frames); a push may extend it to 320 ms (16 frames), so that
//     the packets that came while a late clock slept are there to be mixed,
//     and beyond that drops the oldest whole frames (OverflowDrops counts
//     the dropped frames that held audio, at either point).
//   - Late: samples behind the play-out point are discarded (LateDrops counts
//     packets that lost all or part of their samples this way).
//   - Latency trim: if for 2 s (100 ticks) the buffer never fell below the
//     target depth after a play-out, one frame is skipped (Trimmed) so a
//     burst does not leave a permanent extra delay.
//   - Reset: an SSRC change or a timestamp jump of more than 1 s from the
//     last packet flushes the buffer and re-primes (Resets).
//   - Packet sizes: any number of samples per packet (10 ms, 30 ms, ...) is
//     accepted; the buffer works on samples and plays 160-sample frames.
//
// Mixing: every tick the mixer takes one frame from every participant,
// computes the full sum in int32 and gives each participant the sum minus its
// own contribution (everyone hears the others, not itself), saturated to
// int16. A bridge-wide announcer Source is heard by everyone and is part of
// the recorded mix; a per-participant overlay Source is heard only by that
// participant and is not recorded. A participant that is muted-in is neither
// heard nor recorded.
//
// Concurrency: Add, Remove, Push, SetMuteIn, SetOverlay, SetAnnouncer and
// Stats are safe to call from any goroutine at any time, including from
// callbacks. Tick must be driven by a single clock; concurrent Tick calls are
// serialised, and a callback must not call Tick. No lock shared with Push,
// Add or Remove is held while callbacks run. The steady-state Tick path
// allocates nothing.
package mix
