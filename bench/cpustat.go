package main

import (
	"bufio"
	"os"
	"strconv"
	"strings"
)

// coreTicks is one CPU's line of /proc/stat: time busy (anything but idle
// and iowait, so softirq and steal count) and in all, in clock ticks.
type coreTicks struct{ busy, total uint64 }

// readCores returns the ticks of every CPU, indexed by CPU number.
func readCores() map[int]coreTicks {
	f, err := os.Open("/proc/stat")
	if err != nil {
		return nil
	}
	defer f.Close()
	out := map[int]coreTicks{}
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		fields := strings.Fields(sc.Text())
		if len(fields) < 6 || !strings.HasPrefix(fields[0], "cpu") || fields[0] == "cpu" {
			continue
		}
		cpu, err := strconv.Atoi(fields[0][3:])
		if err != nil {
			continue
		}
		var t coreTicks
		// user nice system idle iowait irq softirq steal (guest time is in user)
		for i, s := range fields[1:min(len(fields), 9)] {
			v, _ := strconv.ParseUint(s, 10, 64)
			t.total += v
			if i != 3 && i != 4 {
				t.busy += v
			}
		}
		out[cpu] = t
	}
	return out
}

// coreBusy returns the share of CPU cpu that was busy between two readings,
// and false if either lacks it.
func coreBusy(before, after map[int]coreTicks, cpu int) (float64, bool) {
	a, ok1 := before[cpu]
	b, ok2 := after[cpu]
	if !ok1 || !ok2 || b.total <= a.total {
		return 0, false
	}
	return float64(b.busy-a.busy) / float64(b.total-a.total), true
}
