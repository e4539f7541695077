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
	// Only echo's baseline moves; the other kinds keep theirs.
	keep := map[string]bool{"net/http": true, "netproxy": true, "netudp": true}
	for _, s := range list {
		want := s.Name == "gnet" || keep[s.Name]
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

// TestKinds: every kind of the suite has a load, exactly one baseline and
// scenarios, and every server a kind.
func TestKinds(t *testing.T) {
	baselines := map[Kind]int{}
	for _, s := range servers {
		if s.Baseline {
			baselines[s.Kind]++
		}
		if _, ok := runners[s.Kind]; !ok {
			t.Errorf("server %s: kind %q has no runner", s.Name, s.Kind)
		}
		if _, up := upstreams[s.Kind]; up && s.UpstreamFlag == "" {
			t.Errorf("server %s: its kind has an upstream, and it no flag to take it by", s.Name)
		}
	}
	for _, k := range []Kind{KindEcho, KindHTTP, KindProxy, KindUDP} {
		if baselines[k] != 1 {
			t.Errorf("kind %s: %d baselines, want 1", k, baselines[k])
		}
		if sc, err := selectScenarios(string(k), 0, 0); err != nil || len(sc) == 0 {
			t.Errorf("kind %s: no scenarios (%v)", k, err)
		}
	}
}

func TestProxyAndUDPScenarios(t *testing.T) {
	proxy, err := selectScenarios("proxy", 0, 512)
	if err != nil || len(proxy) != 3 {
		t.Fatalf("%v, %v", proxy, err)
	}
	rt, bulk1, bulk16 := proxy[0], proxy[1], proxy[2]
	if rt.Title() != "proxy 100x512B" || rt.Unit() != "req/s" || !rt.OpenLoop() {
		t.Errorf("round trips: %q %q open %v", rt.Title(), rt.Unit(), rt.OpenLoop())
	}
	// -size is a message's size: a bulk stream's sends keep theirs.
	if bulk1.Title() != "proxy bulk c1" || bulk16.Conns != 16 || bulk16.Size != 64<<10 || bulk16.Unit() != "MB/s" || bulk16.OpenLoop() {
		t.Errorf("bulk: %+v %q %q open %v", bulk16, bulk1.Title(), bulk16.Unit(), bulk16.OpenLoop())
	}
	udp, err := selectScenarios("udp", 0, 0)
	if err != nil || len(udp) != 2 || udp[0].Title() != "udp 100x64B" || udp[1].Title() != "udp 64x1KiB" || udp[0].Unit() != "dgram/s" || udp[0].OpenLoop() {
		t.Errorf("udp: %+v, %v", udp, err)
	}
	if (Scenario{Kind: KindEcho}).Unit() != "req/s" || !(Scenario{Kind: KindHTTP}).OpenLoop() {
		t.Error("echo and HTTP changed")
	}
}

func TestPickUpstreams(t *testing.T) {
	list, err := selectServers("netproxy,net")
	if err != nil {
		t.Fatal(err)
	}
	if got := pickUpstreams(list, nil); got[KindProxy] != binCEcho || got[KindEcho] != nil {
		t.Errorf("everything built: %v", got)
	}
	got := pickUpstreams(list, map[string]string{binCEcho.Name: "no liburing-dev"})
	if got[KindProxy] != binNetEcho {
		t.Errorf("without the C echo: %v, want netecho", got[KindProxy])
	}
	if got := pickUpstreams(list, map[string]string{binCEcho.Name: "x", binNetEcho.Name: "y"}); got[KindProxy] != nil {
		t.Errorf("nothing built: %v", got[KindProxy])
	}
}

func TestServerAddrFlag(t *testing.T) {
	for _, s := range servers {
		want := "-addr"
		if s.Binary == binKasyncProxy {
			want = "-listen" // examples/proxy's name for it
		}
		if s.addrFlag() != want {
			t.Errorf("%s: address by %s, want %s", s.Name, s.addrFlag(), want)
		}
	}
}
