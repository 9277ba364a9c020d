package bench

import (
	"math"
	"os"
	"runtime"
	"strconv"
	"strings"
)

// Memory is the process's memory, split as far as one process allows.
//
// In-process the gateway, the embedded broker, the simulator and the
// harness share one Go heap, so the split comes from the heap profile:
// live bytes (sampled, scaled as pprof scales them) whose allocation
// stack passes through the broker (franz-go's kfake), through the harness
// (this package) or the simulator's server, and the rest — the gateway.
// VmHWM is the whole process's peak RSS; the gateway's share is estimated
// as VmHWM minus the broker's, harness's and simulator's live heap at the
// sample with the highest heap.
type Memory struct {
	VmHWMBytes       int64 `json:"vm_hwm_bytes"`
	HeapInuseBytes   int64 `json:"heap_inuse_bytes"` // at the heap's peak sample
	BrokerHeapBytes  int64 `json:"broker_heap_bytes"`
	HarnessHeapBytes int64 `json:"harness_heap_bytes"`
	SimHeapBytes     int64 `json:"sim_heap_bytes"`
	GatewayHeapBytes int64 `json:"gateway_heap_bytes"`
	// GatewayRSSEstimate is VmHWM minus the broker's, harness's and
	// simulator's heap.
	GatewayRSSEstimate int64 `json:"gateway_rss_estimate_bytes"`
	// GatewayProcessHWMBytes (split mode) is the gateway process's peak
	// RSS; the broker runs in the harness's process then. The heap split
	// is in process only.
	GatewayProcessHWMBytes int64 `json:"gateway_process_vm_hwm_bytes,omitempty"`
}

// vmHWM is the process's peak resident set size (Linux), 0 if unknown.
func vmHWM() int64 { return hwm("/proc/self/status") }

// hwm reads VmHWM from a /proc/<pid>/status file, 0 if unknown.
func hwm(statusFile string) int64 {
	b, err := os.ReadFile(statusFile)
	if err != nil {
		return 0
	}
	for _, l := range strings.Split(string(b), "\n") {
		if v, ok := strings.CutPrefix(l, "VmHWM:"); ok {
			kb, _ := strconv.ParseInt(strings.TrimSpace(strings.TrimSuffix(strings.TrimSpace(v), "kB")), 10, 64)
			return kb << 10
		}
	}
	return 0
}

// resetHWM restarts the peak RSS count (Linux: clear_refs 5).
func resetHWM() { _ = os.WriteFile("/proc/self/clear_refs", []byte("5"), 0) }

// heapSplit attributes the live heap to the broker, the harness, the
// simulator and the gateway by allocation stack.
func heapSplit() (broker, harness, simulator, gateway int64) {
	var recs []runtime.MemProfileRecord
	n, _ := runtime.MemProfile(nil, false)
	for {
		recs = make([]runtime.MemProfileRecord, n+64)
		var ok bool
		n, ok = runtime.MemProfile(recs, false)
		if ok {
			recs = recs[:n]
			break
		}
	}
	rate := float64(runtime.MemProfileRate)
	for _, r := range recs {
		objs, bytes := r.InUseObjects(), r.InUseBytes()
		if objs == 0 {
			continue
		}
		// pprof's scaling of a sampled heap record
		avg := float64(bytes) / float64(objs)
		scale := 1.0
		if rate > 1 {
			scale = 1 / (1 - math.Exp(-avg/rate))
		}
		v := int64(float64(bytes) * scale)
		switch owner(r.Stack()) {
		case "broker":
			broker += v
		case "harness":
			harness += v
		case "sim":
			simulator += v
		default:
			gateway += v
		}
	}
	return
}

func owner(stk []uintptr) string {
	frames := runtime.CallersFrames(stk)
	for {
		f, more := frames.Next()
		switch {
		case strings.Contains(f.Function, "franz-go/pkg/kfake"):
			return "broker"
		case strings.Contains(f.Function, "paygate/internal/bench."):
			return "harness"
		case strings.Contains(f.Function, "paygate/internal/psp/sim.(*Server)"):
			return "sim"
		}
		if !more {
			return ""
		}
	}
}
