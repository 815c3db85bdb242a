package mix

// Stats are one participant's play-out buffer counters since it was added.
// Counters are cumulative across resets.
type Stats struct {
	Packets       uint64 // packets given to Push (empty ones excluded)
	FramesPlayed  uint64 // frames taken from the buffer while playing (including lost ones)
	FramesLost    uint64 // frames in which no sample had arrived, played as silence in place or covered by an underrun's silence
	Underruns     uint64 // times the buffer ran dry while playing (then re-primed)
	LateDrops     uint64 // packets whose samples were wholly or partly behind the play-out point
	OverflowDrops uint64 // frames holding audio dropped (oldest first) to keep the buffer within 120 ms
	Trimmed       uint64 // frames skipped by the latency trim
	Resets        uint64 // buffer resets on SSRC change or timestamp jump
	Depth         int    // samples currently buffered ahead of the play-out point
	Playing       bool   // false while priming
}
