package config

import (
	"strings"
	"testing"
)

// TestTrunksValidate: defaults are filled in and every bad field is
// named (tapedeck -t).
func TestTrunksValidate(t *testing.T) {
	c := Default()
	c.Trunks = []Trunk{{Name: "op", Address: "127.0.0.1", DIDs: map[string]string{"+3312345": "1001"}}}
	if err := c.Validate(); err != nil {
		t.Fatal(err)
	}
	if c.Trunks[0].Port != 5060 || c.Trunks[0].Transport != "udp" {
		t.Fatalf("defaults: %+v", c.Trunks[0])
	}
	c = Default()
	c.Trunks = []Trunk{
		{Name: "op", Address: "bad host!", Port: 70000, Transport: "sctp", Password: "x", DIDs: map[string]string{"abc": "1001", "+33": ""}},
		{Name: "op", Address: "10.0.0.1"},
	}
	err := c.Validate()
	if err == nil {
		t.Fatal("bad trunks accepted")
	}
	for _, want := range []string{"trunks[0].address", "trunks[0].port", "trunks[0].transport", "trunks[0].username",
		`trunks[0].dids: "abc"`, `trunks[0].dids["+33"]`, `trunks[1].name: "op" is used twice`} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error lacks %s:\n%v", want, err)
		}
	}
}
