package codec

// A straight port of the classic Sun Microsystems g711.c (public domain,
// "provided for unrestricted use", revised 1994 by Borge Lindberg to convert
// unquantised 16-bit values). It is kept deliberately close to the C text,
// including the linear segment search, so that it is an independent oracle
// for the table/bit-length implementation in g711.go.

const (
	refSignBit   = 0x80 // Sign bit for an A-law byte.
	refQuantMask = 0xf  // Quantization field mask.
	refSegShift  = 4    // Left shift for segment number.
	refSegMask   = 0x70 // Segment field mask.
	refBias      = 0x84 // Bias for linear code.
	refClip      = 8159
)

var (
	refSegAEnd = [8]int{0x1F, 0x3F, 0x7F, 0xFF, 0x1FF, 0x3FF, 0x7FF, 0xFFF}
	refSegUEnd = [8]int{0x3F, 0x7F, 0xFF, 0x1FF, 0x3FF, 0x7FF, 0xFFF, 0x1FFF}
)

func refSearch(val int, table [8]int) int {
	for i := 0; i < len(table); i++ {
		if val <= table[i] {
			return i
		}
	}
	return len(table)
}

// refLinear2Alaw is linear2alaw() from g711.c: 2's complement (16-bit range).
func refLinear2Alaw(pcmVal int) byte {
	var mask int
	pcmVal >>= 3
	if pcmVal >= 0 {
		mask = 0xD5 // sign (7th) bit = 1
	} else {
		mask = 0x55 // sign bit = 0
		pcmVal = -pcmVal - 1
	}
	// Convert the scaled magnitude to segment number.
	seg := refSearch(pcmVal, refSegAEnd)
	// Combine the sign, segment, and quantization bits.
	if seg >= 8 { // out of range, return maximum value.
		return byte(0x7F ^ mask)
	}
	aval := seg << refSegShift
	if seg < 2 {
		aval |= (pcmVal >> 1) & refQuantMask
	} else {
		aval |= (pcmVal >> seg) & refQuantMask
	}
	return byte(aval ^ mask)
}

// refAlaw2Linear is alaw2linear() from g711.c.
func refAlaw2Linear(aVal byte) int {
	aVal ^= 0x55
	t := int(aVal&refQuantMask) << 4
	seg := int(aVal&refSegMask) >> refSegShift
	switch seg {
	case 0:
		t += 8
	case 1:
		t += 0x108
	default:
		t += 0x108
		t <<= seg - 1
	}
	if aVal&refSignBit != 0 {
		return t
	}
	return -t
}

// refLinear2Ulaw is linear2ulaw() from g711.c: 2's complement (16-bit range).
func refLinear2Ulaw(pcmVal int) byte {
	var mask int
	// Get the sign and the magnitude of the value.
	pcmVal >>= 2
	if pcmVal < 0 {
		pcmVal = -pcmVal
		mask = 0x7F
	} else {
		mask = 0xFF
	}
	if pcmVal > refClip {
		pcmVal = refClip // clip the magnitude
	}
	pcmVal += refBias >> 2
	// Convert the scaled magnitude to segment number.
	seg := refSearch(pcmVal, refSegUEnd)
	// Combine the sign, segment, quantization bits; and complement the code
	// word.
	if seg >= 8 { // out of range, return maximum value.
		return byte(0x7F ^ mask)
	}
	uval := (seg << 4) | ((pcmVal >> (seg + 1)) & 0xF)
	return byte(uval ^ mask)
}

// refUlaw2Linear is ulaw2linear() from g711.c.
func refUlaw2Linear(uVal byte) int {
	// Complement to obtain normal u-law value.
	uVal = ^uVal
	// Extract and bias the quantization bits. Then shift up by the segment
	// number and subtract out the bias.
	t := (int(uVal&refQuantMask) << 3) + refBias
	t <<= (uint(uVal) & refSegMask) >> refSegShift
	if uVal&refSignBit != 0 {
		return refBias - t
	}
	return t - refBias
}
