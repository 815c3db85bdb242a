package users

import (
	"fmt"
	"testing"
)

// flags builds a user from "oe oi ie ii" letters: o/i = outgoing/incoming,
// e/i = external/internal.
func flags(uuid string, set ...string) *User {
	u := &User{UUID: uuid}
	for _, f := range set {
		switch f {
		case "oe":
			u.CallRecordOutgoingExternal = true
		case "oi":
			u.CallRecordOutgoingInternal = true
		case "ie":
			u.CallRecordIncomingExternal = true
		case "ii":
			u.CallRecordIncomingInternal = true
		default:
			panic(f)
		}
	}
	return u
}

func ownerIDs(owners []*User) string {
	var ids []string
	for _, o := range owners {
		ids = append(ids, o.UUID)
	}
	return fmt.Sprint(ids)
}

func TestDecide(t *testing.T) {
	all := []string{"oe", "oi", "ie", "ii"}
	for _, tc := range []struct {
		name           string
		caller, callee *User
		kind           CallKind
		record         bool
		owners         string
	}{
		{"internal, nobody", flags("a"), flags("b"), Internal, false, "[]"},
		{"internal, caller outgoing internal", flags("a", "oi"), flags("b"), Internal, true, "[a]"},
		{"internal, callee incoming internal", flags("a"), flags("b", "ii"), Internal, true, "[b]"},
		{"internal, both: one recording, two owners", flags("a", "oi"), flags("b", "ii"), Internal, true, "[a b]"},
		{"internal, caller's external flags do not apply", flags("a", "oe", "ie", "ii"), flags("b"), Internal, false, "[]"},
		{"internal, callee's outgoing and external flags do not apply", flags("a"), flags("b", "oi", "oe", "ie"), Internal, false, "[]"},
		{"internal, call_record_enabled on both", flags("a", all...), flags("b", all...), Internal, true, "[a b]"},
		{"internal, calling oneself", flags("a", all...), flags("a", all...), Internal, true, "[a]"},
		{"incoming external, callee incoming external", nil, flags("b", "ie"), IncomingExternal, true, "[b]"},
		{"incoming external, only incoming internal", nil, flags("b", "ii"), IncomingExternal, false, "[]"},
		{"incoming external, callee's outgoing flags", nil, flags("b", "oe", "oi"), IncomingExternal, false, "[]"},
		{"incoming external, a user-looking caller asks nothing", flags("a", all...), flags("b"), IncomingExternal, false, "[]"},
		{"incoming external, no callee", nil, nil, IncomingExternal, false, "[]"},
		{"outgoing external, caller outgoing external", flags("a", "oe"), nil, OutgoingExternal, true, "[a]"},
		{"outgoing external, only outgoing internal", flags("a", "oi"), nil, OutgoingExternal, false, "[]"},
		{"outgoing external, caller's incoming flags", flags("a", "ie", "ii"), nil, OutgoingExternal, false, "[]"},
		{"outgoing external, a user-looking callee asks nothing", flags("a"), flags("b", all...), OutgoingExternal, false, "[]"},
		{"unknown kind", flags("a", all...), flags("b", all...), CallKind(7), false, "[]"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			record, owners := Decide(tc.caller, tc.callee, tc.kind)
			if record != tc.record || ownerIDs(owners) != tc.owners {
				t.Fatalf("Decide = %v %s; want %v %s", record, ownerIDs(owners), tc.record, tc.owners)
			}
		})
	}
}

// TestDecideExhaustive checks every combination of both users' four flags
// for each kind against the rule written out once more: the caller's
// outgoing flag and the callee's incoming flag for that kind.
func TestDecideExhaustive(t *testing.T) {
	user := func(id string, bits int) *User {
		return &User{UUID: id, CallRecordOutgoingExternal: bits&1 != 0, CallRecordOutgoingInternal: bits&2 != 0,
			CallRecordIncomingExternal: bits&4 != 0, CallRecordIncomingInternal: bits&8 != 0}
	}
	for _, kind := range []CallKind{Internal, IncomingExternal, OutgoingExternal} {
		for cb := range 16 {
			for eb := range 16 {
				caller, callee := user("a", cb), user("b", eb)
				var want []string
				switch kind {
				case Internal:
					if cb&2 != 0 {
						want = append(want, "a")
					}
					if eb&8 != 0 {
						want = append(want, "b")
					}
				case IncomingExternal:
					caller = nil
					if eb&4 != 0 {
						want = append(want, "b")
					}
				case OutgoingExternal:
					callee = nil
					if cb&1 != 0 {
						want = append(want, "a")
					}
				}
				record, owners := Decide(caller, callee, kind)
				if record != (len(want) > 0) || ownerIDs(owners) != fmt.Sprint(want) {
					t.Fatalf("%v caller %04b callee %04b: %v %s; want %s", kind, cb, eb, record, ownerIDs(owners), fmt.Sprint(want))
				}
			}
		}
	}
}

func TestCallKindString(t *testing.T) {
	for k, want := range map[CallKind]string{Internal: "internal", IncomingExternal: "incoming-external",
		OutgoingExternal: "outgoing-external", CallKind(9): "CallKind(9)"} {
		if got := k.String(); got != want {
			t.Errorf("%d: %q; want %q", int(k), got, want)
		}
	}
}

func BenchmarkDecide(b *testing.B) {
	caller, callee := flags("a", "oi"), flags("b", "ii")
	nobody := flags("c")
	b.ReportAllocs()
	for i := 0; b.Loop(); i++ {
		if i%2 == 0 {
			Decide(caller, callee, Internal)
		} else {
			Decide(nobody, nobody, Internal)
		}
	}
}
