package tone

import (
	"errors"
	"fmt"
	"sort"
	"strings"
)

// DefaultZone is the tone zone used when none is given (as Asterisk's
// indications.conf default, country=us).
const DefaultZone = "us"

// Indications lists the indication names every built-in zone defines.
var Indications = []string{
	"dial", "busy", "ring", "congestion", "callwaiting",
	"dialrecall", "record", "info", "stutter",
}

var (
	// ErrUnknownZone is returned for a tone zone that is not built in.
	ErrUnknownZone = errors.New("tone: unknown tone zone")
	// ErrUnknownIndication is returned for an indication a zone lacks.
	ErrUnknownIndication = errors.New("tone: unknown indication")
)

// bursts returns n once-only bursts of tone f, ms long, separated by ms of
// silence, followed by the tone string then: the stutter / recall dial tone
// pattern.
func bursts(n, ms int, f, then string) string {
	var b strings.Builder
	for i := 0; i < n; i++ {
		fmt.Fprintf(&b, "!%s/%d,!0/%d,", f, ms, ms)
	}
	b.WriteString(then)
	return b.String()
}

// sit3 is the ITU-T special information tone (950/1400/1800 Hz, 330 ms each)
// given three times, then silence until stopped.
const sit3 = "!950/330,!1400/330,!1800/330,!0/1000," +
	"!950/330,!1400/330,!1800/330,!0/1000," +
	"!950/330,!1400/330,!1800/330,!0/1000,0"

// sitRepeat is the special information tone repeated after 1 s of silence.
const sitRepeat = "950/330,1400/330,1800/330,0/1000"

// zones holds the built-in tone zones: indication name -> tone string.
// Values follow the national tone plans as collected in ITU-T E.180
// Supplement 2 and the operators' interface specifications; where a plan does
// not specify an indication (typically dialrecall, record and stutter) a
// conventional tone in the country's frequency family is used. Names and
// semantics follow Asterisk's indications.conf.
var zones = map[string]map[string]string{
	// United States / North America (Precise Tone Plan).
	"us": {
		"description": "United States / North America",
		"dial":        "350+440",
		"busy":        "480+620/500,0/500",
		"ring":        "440+480/2000,0/4000",
		"congestion":  "480+620/250,0/250",
		"callwaiting": "440/300,0/10000",
		"dialrecall":  bursts(3, 100, "350+440", "350+440"),
		"record":      "1400/500,0/15000",
		"info":        "!950/330,!1400/330,!1800/330,0",
		"stutter":     bursts(6, 100, "350+440", "350+440"),
	},
	// United Kingdom (BT SIN 350).
	"uk": {
		"description":  "United Kingdom",
		"dial":         "350+440",
		"busy":         "400/375,0/375",
		"ring":         "400+450/400,0/200,400+450/400,0/2000",
		"congestion":   "400/400,0/350,400/225,0/525",
		"callwaiting":  "400/100,0/4000",
		"dialrecall":   "350+440/750,440/750",
		"record":       "1400/500,0/60000",
		"info":         "950/330,0/15,1400/330,0/15,1800/330,0/1000",
		"stutter":      "350+440/750,440/750",
		"specialdial":  "350+440/750,440/750",
		"unobtainable": "400",
	},
	// France.
	"fr": {
		"description": "France",
		"dial":        "440",
		"busy":        "440/500,0/500",
		"ring":        "440/1500,0/3500",
		"congestion":  "440/250,0/250",
		"callwaiting": "440/300,0/10000",
		"dialrecall":  bursts(3, 100, "440", "440"),
		"record":      "1400/500,0/15000",
		"info":        sitRepeat,
		"stutter":     bursts(6, 100, "440", "440"),
	},
	// Germany.
	"de": {
		"description": "Germany",
		"dial":        "425",
		"busy":        "425/480,0/480",
		"ring":        "425/1000,0/4000",
		"congestion":  "425/240,0/240",
		"callwaiting": "425/200,0/200,425/200,0/5000",
		"dialrecall":  bursts(3, 100, "425", "425"),
		"record":      "1400/80,0/15000",
		"info":        sitRepeat,
		"stutter":     "425+400",
	},
	// Italy.
	"it": {
		"description": "Italy",
		"dial":        "425/200,0/200,425/600,0/1000",
		"busy":        "425/500,0/500",
		"ring":        "425/1000,0/4000",
		"congestion":  "425/200,0/200",
		"callwaiting": "425/400,0/100,425/250,0/100,425/150,0/14000",
		"dialrecall":  "470/400,425/400",
		"record":      "1400/400,0/15000",
		"info":        sit3,
		"stutter":     "470/400,425/400",
	},
	// Japan (NTT): ringback is 400 Hz modulated by 16 Hz.
	"jp": {
		"description": "Japan",
		"dial":        "400",
		"busy":        "400/500,0/500",
		"ring":        "400*16/1000,0/2000",
		"congestion":  "400/500,0/500",
		"callwaiting": "400*16/500,0/8000",
		"dialrecall":  bursts(3, 200, "400", "400"),
		"record":      "1400/500,0/15000",
		"info":        "!950/330,!1400/330,!1800/330,0",
		"stutter":     bursts(6, 100, "400", "400"),
	},
	// Australia (ACIF S002).
	"au": {
		"description": "Australia",
		"dial":        "413+438",
		"busy":        "425/375,0/375",
		"ring":        "413+438/400,0/200,413+438/400,0/2000",
		"congestion":  "425/375,0/375,420/375,0/375",
		"callwaiting": "425/200,0/200,425/200,0/4400",
		"dialrecall":  "413+438",
		"record":      "!425/1000,!0/15000,425/360,0/15000",
		"info":        "425/2500,0/500",
		"stutter":     "413+438/100,0/40",
	},
	// Austria.
	"at": {
		"description": "Austria",
		"dial":        "420",
		"busy":        "420/400,0/400",
		"ring":        "420/1000,0/5000",
		"congestion":  "420/200,0/200",
		"callwaiting": "420/40,0/1960",
		"dialrecall":  "420",
		"record":      "1400/80,0/14920",
		"info":        "950/330,1450/330,1850/330,0/1000",
		"stutter":     "380+420",
	},
	// Belgium.
	"be": {
		"description": "Belgium",
		"dial":        "425",
		"busy":        "425/500,0/500",
		"ring":        "425/1000,0/3000",
		"congestion":  "425/167,0/167",
		"callwaiting": "1400/175,0/175,1400/175,0/3500",
		"dialrecall":  bursts(3, 100, "425", "425"),
		"record":      "1400/500,0/15000",
		"info":        "900/330,1400/330,1800/330,0/1000",
		"stutter":     "425/1000,0/250",
	},
	// Brazil.
	"br": {
		"description": "Brazil",
		"dial":        "425",
		"busy":        "425/250,0/250",
		"ring":        "425/1000,0/4000",
		"congestion":  "425/250,0/250,425/750,0/250",
		"callwaiting": "425/50,0/1000",
		"dialrecall":  "350+440",
		"record":      "425/250,0/250",
		"info":        sitRepeat,
		"stutter":     "350+440",
	},
	// Switzerland.
	"ch": {
		"description": "Switzerland",
		"dial":        "425",
		"busy":        "425/500,0/500",
		"ring":        "425/1000,0/4000",
		"congestion":  "425/200,0/200",
		"callwaiting": "425/200,0/200,425/200,0/4000",
		"dialrecall":  bursts(3, 100, "425", "425"),
		"record":      "1400/80,0/15000",
		"info":        sitRepeat,
		"stutter":     "425+340/1100,0/1100",
	},
	// China.
	"cn": {
		"description": "China",
		"dial":        "450",
		"busy":        "450/350,0/350",
		"ring":        "450/1000,0/4000",
		"congestion":  "450/700,0/700",
		"callwaiting": "450/400,0/4000",
		"dialrecall":  "450",
		"record":      "950/400,0/10000",
		"info":        "450/100,0/100,450/100,0/100,450/100,0/100,450/400,0/400",
		"stutter":     "450+425",
	},
	// Denmark.
	"dk": {
		"description": "Denmark",
		"dial":        "425",
		"busy":        "425/500,0/500",
		"ring":        "425/1000,0/4000",
		"congestion":  "425/200,0/200",
		"callwaiting": "!425/200,!0/600,!425/200,!0/3000,!425/200,!0/200,!425/200,0",
		"dialrecall":  bursts(3, 100, "425", "425"),
		"record":      "1400/80,0/15000",
		"info":        sitRepeat,
		"stutter":     "425/450,0/50",
	},
	// Spain.
	"es": {
		"description": "Spain",
		"dial":        "425",
		"busy":        "425/200,0/200",
		"ring":        "425/1500,0/3000",
		"congestion":  "425/200,0/200,425/200,0/200,425/200,0/600",
		"callwaiting": "425/175,0/175,425/175,0/3500",
		"dialrecall":  bursts(3, 200, "425", "425"),
		"record":      "1400/500,0/15000",
		"info":        "950/330,0/1000",
		"stutter":     bursts(6, 100, "425", "425"),
	},
	// Finland.
	"fi": {
		"description": "Finland",
		"dial":        "425",
		"busy":        "425/300,0/300",
		"ring":        "425/1000,0/4000",
		"congestion":  "425/200,0/200",
		"callwaiting": "425/150,0/150,425/150,0/8000",
		"dialrecall":  "425/650,0/25",
		"record":      "1400/500,0/15000",
		"info":        "950/650,0/325,950/325,0/30,1400/1300,0/2600",
		"stutter":     "425/650,0/25",
	},
	// India.
	"in": {
		"description": "India",
		"dial":        "400*25",
		"busy":        "400/750,0/750",
		"ring":        "400*25/400,0/200,400*25/400,0/2000",
		"congestion":  "400/250,0/250",
		"callwaiting": "400/200,0/100,400/200,0/7500",
		"dialrecall":  bursts(3, 100, "400", "400*25"),
		"record":      "1400/500,0/15000",
		"info":        "!950/330,!1400/330,!1800/330,0/1000",
		"stutter":     bursts(6, 100, "400", "400*25"),
	},
	// Mexico.
	"mx": {
		"description": "Mexico",
		"dial":        "425",
		"busy":        "425/250,0/250",
		"ring":        "425/1000,0/4000",
		"congestion":  "425/250,0/250",
		"callwaiting": "425/200,0/600,425/200,0/10000",
		"dialrecall":  bursts(3, 100, "425", "425"),
		"record":      "1400/500,0/15000",
		"info":        "950/330,0/30,1400/330,0/30,1800/330,0/1000",
		"stutter":     bursts(6, 100, "425", "425"),
	},
	// Netherlands.
	"nl": {
		"description": "Netherlands",
		"dial":        "425",
		"busy":        "425/500,0/500",
		"ring":        "425/1000,0/4000",
		"congestion":  "425/250,0/250",
		"callwaiting": "425/500,0/9500",
		"dialrecall":  "425/500,0/50",
		"record":      "1400/500,0/15000",
		"info":        sitRepeat,
		"stutter":     "425/500,0/50",
	},
	// Norway.
	"no": {
		"description": "Norway",
		"dial":        "425",
		"busy":        "425/500,0/500",
		"ring":        "425/1000,0/4000",
		"congestion":  "425/200,0/200",
		"callwaiting": "425/200,0/600,425/200,0/10000",
		"dialrecall":  "470/400,425/400",
		"record":      "1400/400,0/15000",
		"info":        sit3,
		"stutter":     "470/400,425/400",
	},
	// New Zealand (Telepermit PTC 102 / TNA 102).
	"nz": {
		"description":  "New Zealand",
		"dial":         "400",
		"busy":         "400/500,0/500",
		"ring":         "400+450/400,0/200,400+450/400,0/2000",
		"congestion":   "400/250,0/250",
		"callwaiting":  "!400/200,!0/3000,!400/200,!0/3000,!400/200,!0/3000,!400/200",
		"dialrecall":   bursts(3, 100, "400", "400"),
		"record":       "1400/425,0/15000",
		"info":         "400/750,0/100,400/750,0/100,400/750,0/100,400/750,0/400",
		"stutter":      bursts(6, 100, "400", "400"),
		"unobtainable": "400/75,0/100,400/75,0/100,400/75,0/100,400/75,0/400",
	},
	// Poland.
	"pl": {
		"description": "Poland",
		"dial":        "425",
		"busy":        "425/500,0/500",
		"ring":        "425/1000,0/4000",
		"congestion":  "425/500,0/500",
		"callwaiting": "425/150,0/150,425/150,0/4000",
		"dialrecall":  "425/500,0/50",
		"record":      "1400/500,0/15000",
		"info":        sit3,
		"stutter":     bursts(6, 100, "425", "425"),
	},
	// Portugal.
	"pt": {
		"description": "Portugal",
		"dial":        "425",
		"busy":        "425/500,0/500",
		"ring":        "425/1000,0/5000",
		"congestion":  "425/200,0/200",
		"callwaiting": "440/300,0/10000",
		"dialrecall":  "425/1000,0/200",
		"record":      "1400/500,0/15000",
		"info":        sitRepeat,
		"stutter":     bursts(6, 100, "425", "425"),
	},
	// Russian Federation (GOST R 45-223-2001).
	"ru": {
		"description": "Russian Federation",
		"dial":        "425",
		"busy":        "425/350,0/350",
		"ring":        "425/800,0/3200",
		"congestion":  "425/175,0/175",
		"callwaiting": "425/200,0/5000",
		"dialrecall":  "425/400,0/40",
		"record":      "1400/400,0/15000",
		"info":        sitRepeat,
		"stutter":     bursts(6, 100, "425", "425"),
	},
	// Sweden.
	"se": {
		"description": "Sweden",
		"dial":        "425",
		"busy":        "425/250,0/250",
		"ring":        "425/1000,0/5000",
		"congestion":  "425/250,0/750",
		"callwaiting": "425/200,0/500,425/200,0/9100",
		"dialrecall":  bursts(3, 100, "425", "425"),
		"record":      "1400/500,0/15000",
		"info":        "950/332,0/24,1400/332,0/24,1800/332,0/2024",
		"stutter":     "425/320,0/20",
	},
}

// aliases maps alternative country codes to built-in zones.
var aliases = map[string]string{
	"gb": "uk",
	"ca": "us",
}

func zoneKey(country string) string {
	c := strings.ToLower(strings.TrimSpace(country))
	if c == "" {
		c = DefaultZone
	}
	if a, ok := aliases[c]; ok {
		c = a
	}
	return c
}

// Zones returns the codes of the built-in tone zones, sorted.
func Zones() []string {
	out := make([]string, 0, len(zones))
	for k := range zones {
		out = append(out, k)
	}
	sort.Strings(out)
	return out
}

// Zone returns a copy of the indications of a tone zone (indication name ->
// tone string; the "description" key holds the country's name). Country codes
// are case-insensitive; "" means DefaultZone; "gb" is an alias of "uk" and
// "ca" of "us".
func Zone(country string) (map[string]string, bool) {
	z, ok := zones[zoneKey(country)]
	if !ok {
		return nil, false
	}
	out := make(map[string]string, len(z))
	for k, v := range z {
		out[k] = v
	}
	return out, true
}

// Lookup returns the tone string of indication name (e.g. "ring") in zone
// ("" = DefaultZone). Names are case-insensitive.
func Lookup(name, zone string) (string, error) {
	key := zoneKey(zone)
	z, ok := zones[key]
	if !ok {
		return "", fmt.Errorf("%w %q", ErrUnknownZone, zone)
	}
	n := strings.ToLower(strings.TrimSpace(name))
	s, ok := z[n]
	if !ok || n == "description" {
		return "", fmt.Errorf("%w %q in zone %q", ErrUnknownIndication, name, key)
	}
	return s, nil
}

// ParseURI parses what follows "tone:" in an ARI media URI:
//
//	<indication or tone string>[;tonezone=<country>]
//
// e.g. "ring;tonezone=fr", "record;tonezone=de", "!350+440/100,!0/100".
// The zone is tonezone= if given, else defaultZone, else DefaultZone. Like
// Asterisk, the first field is looked up as an indication of the zone and,
// failing that, parsed as a tone string; if it is neither, ParseURI returns
// an error wrapping ErrUnknownIndication. An unknown zone is an error
// (ErrUnknownZone). Other ;key=value parameters are ignored.
func ParseURI(rest string, defaultZone string) (*Tone, error) {
	fields := strings.Split(rest, ";")
	name := strings.TrimSpace(fields[0])
	zone := defaultZone
	for _, f := range fields[1:] {
		k, v, _ := strings.Cut(f, "=")
		if strings.EqualFold(strings.TrimSpace(k), "tonezone") {
			zone = strings.TrimSpace(v)
		}
	}
	if name == "" {
		return nil, fmt.Errorf("tone: empty tone URI %q", rest)
	}
	key := zoneKey(zone)
	if _, ok := zones[key]; !ok {
		return nil, fmt.Errorf("%w %q", ErrUnknownZone, zone)
	}
	if s, err := Lookup(name, key); err == nil {
		return Parse(s)
	}
	t, err := Parse(name)
	if err != nil {
		return nil, fmt.Errorf("%w %q in zone %q and not a tone string (%v)", ErrUnknownIndication, name, key, err)
	}
	return t, nil
}
