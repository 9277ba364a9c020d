package bench

import (
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"
)

// CPU is where the machine's CPU time went during a step, in cores (CPU
// seconds per second): the whole machine (from /proc/stat), this process
// (in process: gateway, broker, simulator and harness together) and the
// local PostgreSQL server's processes. A pipeline step is measured from
// its first send until every webhook's paid event was read (or the drain
// timed out), the ingress alone over its sending. Per webhook is the
// machine's busy time divided by the webhooks sent. Linux only; zero
// elsewhere.
type CPU struct {
	Cores            int     `json:"cores"`
	MachineBusy      float64 `json:"machine_busy_cores"`
	Process          float64 `json:"process_cores"`
	Postgres         float64 `json:"postgres_cores"`
	Gateway          float64 `json:"gateway_process_cores,omitempty"` // split mode
	MachineUSPerHook float64 `json:"machine_us_per_webhook"`
	// GatewayUSPerHook (split mode) is the gateway process's CPU divided
	// by the webhooks sent: what the gateway alone costs.
	GatewayUSPerHook float64 `json:"gateway_us_per_webhook,omitempty"`
}

// cpuSample is a reading of the counters CPU is computed from, in clock
// ticks.
type cpuSample struct {
	at                time.Time
	busy, total       int64 // all CPUs, /proc/stat
	process, postgres int64
	gateway           int64
}

// clkTck is USER_HZ, 100 on every Linux architecture Go supports.
const clkTck = 100

// readCPU reads the counters; gatewayPid, if not 0, is the gateway's
// process (split mode).
func readCPU(gatewayPid int) cpuSample {
	s := cpuSample{at: time.Now()}
	if b, err := os.ReadFile("/proc/stat"); err == nil {
		line, _, _ := strings.Cut(string(b), "\n")
		f := strings.Fields(line) // cpu user nice system idle iowait irq softirq steal ...
		for i, v := range f[1:] {
			n, _ := strconv.ParseInt(v, 10, 64)
			if i >= 8 { // guest time is already in user
				break
			}
			s.total += n
			if i != 3 && i != 4 { // idle, iowait
				s.busy += n
			}
		}
	}
	s.process = procTicks("/proc/self/stat")
	if gatewayPid != 0 {
		s.gateway = procTicks(fmt.Sprintf("/proc/%d/stat", gatewayPid))
	}
	dirs, _ := filepath.Glob("/proc/[0-9]*")
	for _, d := range dirs {
		if comm, err := os.ReadFile(d + "/comm"); err == nil && strings.TrimSpace(string(comm)) == "postgres" {
			s.postgres += procTicks(d + "/stat")
		}
	}
	return s
}

// procTicks is utime+stime of one process.
func procTicks(statFile string) int64 {
	b, err := os.ReadFile(statFile)
	if err != nil {
		return 0
	}
	// The command name, in parentheses, may hold spaces: fields count
	// from the last ')'.
	i := strings.LastIndexByte(string(b), ')')
	if i < 0 {
		return 0
	}
	f := strings.Fields(string(b[i+1:]))
	if len(f) < 13 {
		return 0
	}
	u, _ := strconv.ParseInt(f[11], 10, 64)
	st, _ := strconv.ParseInt(f[12], 10, 64)
	return u + st
}

// cpuBetween is the CPU use from a to b, with n webhooks sent in between.
func cpuBetween(a, b cpuSample, cores, n int) *CPU {
	secs := b.at.Sub(a.at).Seconds()
	if secs <= 0 || b.total <= a.total {
		return nil
	}
	c := &CPU{Cores: cores}
	share := float64(b.busy-a.busy) / float64(b.total-a.total)
	c.MachineBusy = share * float64(cores)
	c.Process = float64(b.process-a.process) / clkTck / secs
	c.Postgres = float64(b.postgres-a.postgres) / clkTck / secs
	c.Gateway = float64(b.gateway-a.gateway) / clkTck / secs
	if n > 0 {
		c.MachineUSPerHook = c.MachineBusy * secs / float64(n) * 1e6
		c.GatewayUSPerHook = c.Gateway * secs / float64(n) * 1e6
	}
	return c
}
