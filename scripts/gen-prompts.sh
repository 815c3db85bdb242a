#!/bin/sh
# gen-prompts.sh - (re)generate tapedeck's built-in English speech prompts.
#
# The prompts used by internal/media/say (number:, digits: and characters:
# playback) are synthesised here with espeak-ng and post-processed with sox.
# They are produced by this project; nothing is copied from other sound sets.
#
# Output: internal/media/say/prompts/en/<name>.sln
#   8 kHz, mono, signed 16-bit little-endian raw PCM ("sln", as Asterisk calls
#   it), leading/trailing silence trimmed, peak-normalised to -6 dBFS.
#
# Run it from anywhere (it resolves the repository root from its own path), or
# via `go generate ./internal/media/say`.
# Requirements: espeak-ng and sox (Debian: apt-get install -y espeak-ng sox).
# Tunables (environment): VOICE (default en-us), SPEED in words/min (default 150).
set -eu

root=$(cd "$(dirname "$0")/.." && pwd)
out="$root/internal/media/say/prompts/en"
voice=${VOICE:-en-us}
speed=${SPEED:-150}

for tool in espeak-ng sox; do
	if ! command -v "$tool" >/dev/null 2>&1; then
		echo "gen-prompts: $tool not found (apt-get install -y espeak-ng sox)" >&2
		exit 1
	fi
done

tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT INT TERM

mkdir -p "$out"
rm -f "$out"/*.sln

# gen NAME TEXT: speak TEXT into $out/NAME.sln
gen() {
	espeak-ng -v "$voice" -s "$speed" -w "$tmp/$1.wav" "$2"
	# -D: no dither, so the output is reproducible bit for bit.
	# silence/reverse twice: trim silence at both ends (threshold 1%, 20 ms).
	sox -D "$tmp/$1.wav" -t raw -e signed-integer -b 16 -c 1 -r 8000 "$out/$1.sln" \
		silence 1 0.02 1% reverse silence 1 0.02 1% reverse \
		rate -h 8000 norm -6
}

# Numbers (Asterisk SayNumber / SayDigits vocabulary, English).
for w in zero one two three four five six seven eight nine \
	ten eleven twelve thirteen fourteen fifteen sixteen seventeen eighteen nineteen \
	twenty thirty forty fifty sixty seventy eighty ninety \
	hundred thousand million billion minus; do
	gen "$w" "$w"
done

# Letters: a lone letter is spoken by its name ("a" -> "ay", "z" -> "zee").
for l in a b c d e f g h i j k l m n o p q r s t u v w x y z; do
	gen "$l" "$l"
done

# Symbols spoken by SayAlpha (characters:) and SayDigits (digits:).
gen star star
gen pound pound
gen dash dash
gen dot dot
gen at at
gen slash slash
gen plus plus
gen equals equals
gen dollar dollar
gen exclamation-point "exclamation point"
gen space space

n=$(ls "$out"/*.sln | wc -l)
bytes=$(cat "$out"/*.sln | wc -c)
echo "gen-prompts: wrote $n prompts, $bytes bytes, to $out"
