// go_checkers takes the full self snapshot that lift-monitor's sampler takes, the way a
// Go service's health checkers take it: runtime.ReadMemStats and NumGoroutine, then
// /proc/self/stat, the fd directory, getrlimit, getrusage, statfs of the working
// directory and the memory cgroup's files, read with os.ReadFile each time.
//
// The cgroup files are cgroup v2's (memory.current, memory.max, memory.events) or, on a
// host whose memory controller is still v1, v1's (memory.usage_in_bytes,
// memory.limit_in_bytes, memory.oom_control), as lift-monitor reads them; which one is
// decided once at start, as lift-monitor decides it.
//
// It prints the median CPU time of the calling thread per snapshot (and the wall time),
// like `cargo run --release -p lift-monitor --example snapshot_cost`, so the two can be
// compared side by side; and the CPU time of the whole process, which also counts the
// garbage collector's background work on other threads:
//
//	cd crates/lift-monitor/examples/go_checkers && go run .
//
// It is a stdlib-only re-implementation of those checkers, not the original code.
package main

import (
	"bytes"
	"fmt"
	"os"
	"path/filepath"
	"runtime"
	"sort"
	"strconv"
	"strings"
	"syscall"
	"time"
	"unsafe"
)

type snapshot struct {
	goroutines  int
	heapAlloc   uint64
	heapObjects uint64
	threads     uint64
	rssPages    uint64
	vsize       uint64
	userSec     float64
	sysSec      float64
	maxRSS      int64
	openFDs     int
	fdSoft      uint64
	diskTotal   uint64
	diskAvail   uint64
	cgCurrent   uint64
	cgMax       string
	oomKills    uint64
}

var cgroupDir string

// cgroupV1 is true when the memory controller is v1's (cgroupDir is then its directory).
var cgroupV1 bool

func init() {
	data, err := os.ReadFile("/proc/self/cgroup")
	if err != nil {
		return
	}
	var v1Dir string
	for _, line := range strings.Split(string(data), "\n") {
		if rest, ok := strings.CutPrefix(line, "0::"); ok {
			cgroupDir = filepath.Join("/sys/fs/cgroup", rest)
		}
		// N:controllers:/path, with memory among the controllers.
		if parts := strings.SplitN(line, ":", 3); len(parts) == 3 {
			for _, controller := range strings.Split(parts[1], ",") {
				if controller == "memory" {
					v1Dir = filepath.Join("/sys/fs/cgroup/memory", parts[2])
				}
			}
		}
	}
	// A hybrid host has a v2 hierarchy without the memory controller: use v1's then.
	if _, err := os.Stat(filepath.Join(cgroupDir, "memory.current")); err != nil && v1Dir != "" {
		cgroupDir, cgroupV1 = v1Dir, true
	}
}

func take(cwd string) snapshot {
	var s snapshot
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	s.goroutines = runtime.NumGoroutine()
	s.heapAlloc, s.heapObjects = ms.HeapAlloc, ms.HeapObjects

	if stat, err := os.ReadFile("/proc/self/stat"); err == nil {
		if i := bytes.LastIndexByte(stat, ')'); i >= 0 {
			f := strings.Fields(string(stat[i+1:]))
			// f[0] is field 3 (state): field n is f[n-3].
			if len(f) > 21 {
				s.threads, _ = strconv.ParseUint(f[20-3], 10, 64)
				s.vsize, _ = strconv.ParseUint(f[23-3], 10, 64)
				s.rssPages, _ = strconv.ParseUint(f[24-3], 10, 64)
			}
		}
	}
	if entries, err := os.ReadDir("/proc/self/fd"); err == nil {
		s.openFDs = len(entries)
	}
	var rl syscall.Rlimit
	if syscall.Getrlimit(syscall.RLIMIT_NOFILE, &rl) == nil {
		s.fdSoft = rl.Cur
	}
	var ru syscall.Rusage
	if syscall.Getrusage(syscall.RUSAGE_SELF, &ru) == nil {
		s.userSec = float64(ru.Utime.Sec) + float64(ru.Utime.Usec)/1e6
		s.sysSec = float64(ru.Stime.Sec) + float64(ru.Stime.Usec)/1e6
		s.maxRSS = ru.Maxrss
	}
	var fs syscall.Statfs_t
	if syscall.Statfs(cwd, &fs) == nil {
		s.diskTotal = fs.Blocks * uint64(fs.Frsize)
		s.diskAvail = fs.Bavail * uint64(fs.Frsize)
	}
	if cgroupDir != "" && cgroupV1 {
		if b, err := os.ReadFile(filepath.Join(cgroupDir, "memory.usage_in_bytes")); err == nil {
			s.cgCurrent, _ = strconv.ParseUint(strings.TrimSpace(string(b)), 10, 64)
		}
		if b, err := os.ReadFile(filepath.Join(cgroupDir, "memory.limit_in_bytes")); err == nil {
			s.cgMax = strings.TrimSpace(string(b))
		}
		if b, err := os.ReadFile(filepath.Join(cgroupDir, "memory.oom_control")); err == nil {
			for _, line := range strings.Split(string(b), "\n") {
				if v, ok := strings.CutPrefix(line, "oom_kill "); ok {
					s.oomKills, _ = strconv.ParseUint(v, 10, 64)
				}
			}
		}
	} else if cgroupDir != "" {
		if b, err := os.ReadFile(filepath.Join(cgroupDir, "memory.current")); err == nil {
			s.cgCurrent, _ = strconv.ParseUint(strings.TrimSpace(string(b)), 10, 64)
		}
		if b, err := os.ReadFile(filepath.Join(cgroupDir, "memory.max")); err == nil {
			s.cgMax = strings.TrimSpace(string(b))
		}
		if b, err := os.ReadFile(filepath.Join(cgroupDir, "memory.events")); err == nil {
			for _, line := range strings.Split(string(b), "\n") {
				if v, ok := strings.CutPrefix(line, "oom_kill "); ok {
					s.oomKills, _ = strconv.ParseUint(v, 10, 64)
				}
			}
		}
	}
	return s
}

// cpuNanos reads a CPU-time clock.
func cpuNanos(clock uintptr) float64 {
	var ts syscall.Timespec
	syscall.Syscall(syscall.SYS_CLOCK_GETTIME, clock, uintptr(unsafe.Pointer(&ts)), 0)
	return float64(ts.Sec)*1e9 + float64(ts.Nsec)
}

// threadCPUNanos is the CPU time of the calling OS thread (CLOCK_THREAD_CPUTIME_ID).
func threadCPUNanos() float64 { return cpuNanos(3) }

// processCPUNanos is the CPU time of the whole process (CLOCK_PROCESS_CPUTIME_ID),
// the garbage collector's workers included.
func processCPUNanos() float64 { return cpuNanos(2) }

var sink snapshot

func main() {
	runtime.LockOSThread()
	cwd, err := os.Getwd()
	if err != nil {
		cwd = "/"
	}
	first := take(cwd)
	if first.rssPages == 0 || first.diskTotal == 0 {
		fmt.Fprintln(os.Stderr, "the snapshot read nothing; is /proc mounted?")
		os.Exit(1)
	}
	if cgroupDir != "" && first.cgCurrent == 0 {
		fmt.Fprintf(os.Stderr, "note: no memory cgroup figures read from %s\n", cgroupDir)
	}
	const rounds, iterations = 31, 2000
	cpu := make([]float64, 0, rounds)
	process := make([]float64, 0, rounds)
	wall := make([]float64, 0, rounds)
	for r := 0; r < rounds; r++ {
		start, cpuStart, processStart := time.Now(), threadCPUNanos(), processCPUNanos()
		for i := 0; i < iterations; i++ {
			sink = take(cwd)
		}
		cpu = append(cpu, (threadCPUNanos()-cpuStart)/iterations)
		process = append(process, (processCPUNanos()-processStart)/iterations)
		wall = append(wall, float64(time.Since(start).Nanoseconds())/iterations)
	}
	sort.Float64s(cpu)
	sort.Float64s(process)
	sort.Float64s(wall)
	cgroup := "v2"
	if cgroupV1 {
		cgroup = "v1"
	}
	fmt.Printf("go checkers full snapshot (cgroup %s): %.0f ns CPU time, %.0f ns process CPU time, %.0f ns wall time, median of %d rounds of %d (%s)\n",
		cgroup, cpu[rounds/2], process[rounds/2], wall[rounds/2], rounds, iterations, runtime.Version())
	fmt.Printf("%.0f\n", cpu[rounds/2])
}
