//go:build dpdk

package dpdk

/*
#cgo pkg-config: libdpdk
#include "natgw_dpdk.h"
*/
import "C"

import (
	"errors"
	"fmt"
	"os"
	"runtime"
	"strings"
	"sync"
	"unsafe"

	"golang.org/x/sys/unix"
)

// This file owns the Environment Abstraction Layer: one rte_eal_init per
// process, the packet mempool, and rte_eal_cleanup once the last port is
// closed. Everything here runs on the management core.

// ErrEALUsed is returned by Start when EAL was already initialised in this
// process: DPDK does not support a second rte_eal_init, not even after
// rte_eal_cleanup. Restart the process instead.
var ErrEALUsed = errors.New("dpdk: EAL was already initialised in this process (DPDK cannot initialise it twice)")

// ErrClosed is returned when a session or port is used after Close.
var ErrClosed = errors.New("dpdk: closed")

// ProgramName is argv[0] as EAL sees it (it appears in EAL's log lines).
const ProgramName = "natgw"

// EALArgs returns the argument vector natgw passes to rte_eal_init for the
// configured eal_args: ProgramName first, then args, then
// "--file-prefix natgw-<pid>" unless args choose a prefix (so a restart
// right after a crash, or tests running side by side, never meet another
// process's runtime files), and "--in-memory" unless args ask for shared
// memory configuration themselves (--in-memory, --no-shconf,
// --proc-type): natgw is a single primary process, so it needs no shared
// config and leaves no hugepage files behind.
func EALArgs(args []string, pid int) []string {
	out := append([]string{ProgramName}, args...)
	has := func(flags ...string) bool {
		for _, a := range args {
			for _, f := range flags {
				if a == f || strings.HasPrefix(a, f+"=") {
					return true
				}
			}
		}
		return false
	}
	if !has("--file-prefix") {
		out = append(out, "--file-prefix", fmt.Sprintf("natgw-%d", pid))
	}
	if !has("--in-memory", "--no-shconf", "--proc-type") {
		out = append(out, "--in-memory")
	}
	return out
}

// eal is the process's EAL state: used once, cleaned up once.
var eal struct {
	mu      sync.Mutex
	used    bool // rte_eal_init was called (successfully or not)
	cleaned bool
	// runtimeDir is EAL's runtime directory when natgw chose the file
	// prefix (natgw-<pid>): it is removed after cleanup, so restarts don't
	// leave one directory per pid in /var/run/dpdk.
	runtimeDir string
}

// initEAL runs rte_eal_init with argv on a locked OS thread and restores
// that thread's CPU affinity afterwards: EAL pins the calling thread to
// the main lcore's CPU, and Go would otherwise run arbitrary goroutines
// (and create new threads, which inherit the mask) on that one CPU.
func initEAL(argv []string) error {
	runtime.LockOSThread()
	defer runtime.UnlockOSThread()
	var saved unix.CPUSet
	haveMask := unix.SchedGetaffinity(0, &saved) == nil

	cargs := C.malloc(C.size_t(len(argv)+1) * C.size_t(unsafe.Sizeof(uintptr(0))))
	defer C.free(cargs)
	ptrs := unsafe.Slice((**C.char)(cargs), len(argv)+1)
	for i, a := range argv {
		ptrs[i] = C.CString(a)
	}
	ptrs[len(argv)] = nil
	// EAL keeps pointers into argv (it may reorder the vector), so the
	// strings are never freed: a few bytes, once per process.
	var cerr C.int
	ret := C.natgw_eal_init(C.int(len(argv)), (**C.char)(cargs), &cerr)
	if haveMask {
		_ = unix.SchedSetaffinity(0, &saved)
	}
	if ret < 0 {
		return fmt.Errorf("dpdk: rte_eal_init %q: %s", argv, errnoString(int(cerr)))
	}
	if dir := C.GoString(C.rte_eal_get_runtime_dir()); strings.HasSuffix(dir, fmt.Sprintf("/natgw-%d", pid)) {
		eal.mu.Lock()
		eal.runtimeDir = dir
		eal.mu.Unlock()
	}
	return nil
}

// cleanupEAL runs rte_eal_cleanup once.
func cleanupEAL() error {
	eal.mu.Lock()
	defer eal.mu.Unlock()
	if eal.cleaned {
		return nil
	}
	eal.cleaned = true
	ret := C.rte_eal_cleanup()
	if eal.runtimeDir != "" {
		_ = os.RemoveAll(eal.runtimeDir) // natgw-<pid>: this process's own
	}
	if ret < 0 {
		return fmt.Errorf("dpdk: rte_eal_cleanup: %s", errnoString(int(-ret)))
	}
	return nil
}

// errnoString names an errno or rte_errno value.
func errnoString(e int) string {
	if e < 0 {
		e = -e
	}
	return fmt.Sprintf("%s (errno %d)", C.GoString(C.rte_strerror(C.int(e))), e)
}

// SoftRSS is DPDK's software Toeplitz hash (rte_softrss) of a remote
// endpoint under key, with the endpoint laid out as NICs hash
// L3_*_ONLY|L4_*_ONLY: the address then the port, big endian (passed to
// rte_softrss as the host-order words addr and port<<16). Tests use it to
// check lcore.Owner against DPDK. It needs no EAL. key must hold at least
// 12 bytes; a shorter key returns 0.
func SoftRSS(key []byte, addr uint32, port uint16) uint32 {
	if len(key) < 12 {
		return 0
	}
	return uint32(C.natgw_softrss(C.uint32_t(addr), C.uint16_t(port), (*C.uint8_t)(unsafe.Pointer(&key[0]))))
}

// pid is the process id used in the default file prefix.
var pid = os.Getpid()
