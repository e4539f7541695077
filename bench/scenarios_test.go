package main

import "testing"

func TestRebase(t *testing.T) {
	list, err := selectServers("")
	if err != nil {
		t.Fatal(err)
	}
	list, err = rebase(list, "gnet")
	if err != nil {
		t.Fatal(err)
	}
	for _, s := range list {
		want := s.Name == "gnet" || s.Name == "net/http"
		if s.Baseline != want {
			t.Errorf("%s: baseline %v, want %v", s.Name, s.Baseline, want)
		}
	}
	for _, s := range servers {
		if s.Name == "net" && !s.Baseline {
			t.Error("rebase changed the global server list")
		}
	}
	if _, err := rebase(list, "nosuch"); err == nil {
		t.Error("rebase to an unknown server: no error")
	}
}
