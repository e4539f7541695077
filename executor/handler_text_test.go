//go:build linux

package executor

import (
	"bytes"
	"encoding/json"
	"fmt"
	"testing"
)

// RecvMode is text: ServerStats marshal to JSON with the mode's name.
func TestRecvModeText(t *testing.T) {
	for _, m := range hAllModes {
		b, err := json.Marshal(ServerStats{RecvMode: m, Loops: 2})
		if err != nil {
			t.Fatal(err)
		}
		want := fmt.Sprintf(`"recv_mode":%q`, m.String())
		if !bytes.Contains(b, []byte(want)) {
			t.Fatalf("%v marshals to %s, want %s in it", m, b, want)
		}
		var st ServerStats
		if err := json.Unmarshal(b, &st); err != nil {
			t.Fatal(err)
		}
		if st.RecvMode != m || st.Loops != 2 {
			t.Fatalf("round trip of %s: %+v", b, st)
		}
	}
	for name, m := range map[string]RecvMode{"auto": RecvAuto, "plain": RecvPlain, "bundle": RecvBundle, "incremental": RecvIncremental} {
		var got RecvMode
		if err := got.UnmarshalText([]byte(name)); err != nil || got != m {
			t.Fatalf("UnmarshalText(%q) = %v, %v", name, got, err)
		}
	}
	var m RecvMode
	if err := json.Unmarshal([]byte(`"fast"`), &m); err == nil {
		t.Fatalf("unknown mode name accepted as %v", m)
	}
	if _, err := json.Marshal(RecvMode(42)); err == nil {
		t.Fatal("RecvMode(42) marshalled")
	}
}
