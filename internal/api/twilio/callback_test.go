package twilio

import (
	"net/url"
	"testing"
)

// TestSignature: Twilio's documented example request (auth token 12345)
// signs as Twilio and the npm library's getExpectedTwilioSignature do;
// a changed parameter changes it.
func TestSignature(t *testing.T) {
	params := url.Values{"CallSid": {"CA1234567890ABCDE"}, "Caller": {"+12349013030"}, "Digits": {"1234"},
		"From": {"+12349013030"}, "To": {"+18005551212"}}
	const u = "https://mycompany.com/myapp.php?foo=1&bar=2"
	if got, want := Signature("12345", u, params), "0/KCTR6DLpKmkAf8muzZqo1nDgQ="; got != want {
		t.Errorf("signature %q, want %q", got, want)
	}
	params.Set("Digits", "1235")
	if Signature("12345", u, params) == "0/KCTR6DLpKmkAf8muzZqo1nDgQ=" {
		t.Error("a changed parameter keeps the signature")
	}
}
