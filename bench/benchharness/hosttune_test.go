package main

import (
	"os"
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// natgwLog is a natgw log file as the harness keeps it: two starts, the
// first with one worker, the second with two.
const natgwLog = `--- benchharness: natgw start 1 at 2026-12-06T07:00:00Z
time=2026-12-06T07:00:00.100Z level=INFO msg="DPDK started" ports=2
time=2026-12-06T07:00:00.200Z level=INFO msg="worker pinned" worker=0 cpu=1 tid=4101
time=2026-12-06T07:00:03.000Z level=INFO msg="stopping"
--- benchharness: natgw start 2 at 2026-12-06T07:00:04Z
time=2026-12-06T07:00:04.100Z level=INFO msg="worker pinned" worker=0 cpu=1 tid=4202
time=2026-12-06T07:00:04.100Z level=INFO msg="worker pinned" worker=1 cpu=2 tid=4203
`

func TestParseWorkerTIDs(t *testing.T) {
	tids, err := parseWorkerTIDs(natgwLog, natgwStartMarker(2))
	require.NoError(t, err)
	assert.Equal(t, []int{4202, 4203}, tids)

	tids, err = parseWorkerTIDs(natgwLog, "")
	require.NoError(t, err)
	assert.Equal(t, []int{4101, 4202, 4203}, tids)

	// The first start, at the top of the file, ends where the second
	// begins.
	tids, err = parseWorkerTIDs(natgwLog, natgwStartMarker(1))
	require.NoError(t, err)
	assert.Equal(t, []int{4101}, tids)

	// A start whose worker has not logged yet, and a start not in the log.
	tids, err = parseWorkerTIDs(natgwLog+natgwStartMarker(3)+"now\n", natgwStartMarker(3))
	require.NoError(t, err)
	assert.Empty(t, tids)
	tids, err = parseWorkerTIDs(natgwLog, natgwStartMarker(7))
	require.NoError(t, err)
	assert.Empty(t, tids)

	// A worker pinned line without a usable thread id is an error.
	for _, bad := range []string{
		`level=INFO msg="worker pinned" worker=0 cpu=1`,
		`level=INFO msg="worker pinned" worker=0 cpu=1 tid=x`,
		`level=INFO msg="worker pinned" worker=0 cpu=1 tid=0`,
	} {
		_, err = parseWorkerTIDs(bad+"\n", "")
		assert.Error(t, err, bad)
	}
}

func TestSetProcValue(t *testing.T) {
	path := filepath.Join(t.TempDir(), "stat_interval")
	require.NoError(t, os.WriteFile(path, []byte("1\n"), 0o644))
	prev, restore, err := setProcValue(path, "120")
	require.NoError(t, err)
	assert.Equal(t, "1", prev)
	b, err := os.ReadFile(path)
	require.NoError(t, err)
	assert.Equal(t, "120\n", string(b))
	require.NoError(t, restore())
	b, err = os.ReadFile(path)
	require.NoError(t, err)
	assert.Equal(t, "1\n", string(b))
	// restore runs once: a later change is not overwritten.
	require.NoError(t, os.WriteFile(path, []byte("5\n"), 0o644))
	require.NoError(t, restore())
	b, err = os.ReadFile(path)
	require.NoError(t, err)
	assert.Equal(t, "5\n", string(b))

	// Already at the value: nothing written, nothing to restore.
	prev, restore, err = setProcValue(path, "5")
	require.NoError(t, err)
	assert.Equal(t, "5", prev)
	require.NoError(t, os.WriteFile(path, []byte("7\n"), 0o644))
	require.NoError(t, restore())
	b, err = os.ReadFile(path)
	require.NoError(t, err)
	assert.Equal(t, "7\n", string(b))

	// Bad values and files are errors, and nothing is written.
	_, _, err = setProcValue(path, "two")
	assert.Error(t, err)
	require.NoError(t, os.WriteFile(path, []byte("garbage\n"), 0o644))
	_, _, err = setProcValue(path, "120")
	assert.Error(t, err)
	b, err = os.ReadFile(path)
	require.NoError(t, err)
	assert.Equal(t, "garbage\n", string(b))
	_, _, err = setProcValue(filepath.Join(t.TempDir(), "missing"), "1")
	assert.Error(t, err)
}

func TestPendingRestores(t *testing.T) {
	dir := t.TempDir()
	a, b := filepath.Join(dir, "a"), filepath.Join(dir, "b")
	require.NoError(t, os.WriteFile(a, []byte("950000\n"), 0o644))
	require.NoError(t, os.WriteFile(b, []byte("1\n"), 0o644))
	_, ra, err := setProcValue(a, "-1")
	require.NoError(t, err)
	_, rb, err := setProcValue(b, "120")
	require.NoError(t, err)
	ra = onSignalRestore(ra)
	_ = onSignalRestore(rb)
	// a is restored the normal way (and leaves the signal list); the
	// signal path restores b only.
	require.NoError(t, ra())
	require.NoError(t, os.WriteFile(a, []byte("42\n"), 0o644))
	require.NoError(t, runPendingRestores())
	for path, want := range map[string]string{a: "42\n", b: "1\n"} {
		got, err := os.ReadFile(path)
		require.NoError(t, err)
		assert.Equal(t, want, string(got), path)
	}
	restores.Lock()
	assert.Empty(t, restores.pending)
	restores.Unlock()
}

func TestHostTuningDescribe(t *testing.T) {
	var none *hostTuning
	assert.Contains(t, none.describe(), "not recorded")
	h := &hostTuning{WorkerFIFO: true, FIFOThreads: 12, RTRuntimeUs: "-1", RTRuntimeBefore: "950000",
		StatInterval: "120", StatIntervalBefore: "1"}
	assert.Equal(t, "Host settings for the run: natgw's worker thread SCHED_FIFO (priority 1), set with sched_setattr on the "+
		"`worker pinned` thread of each of 12 natgw starts; kernel.sched_rt_runtime_us -1 (was 950000); vm.stat_interval 120 s (was 1).",
		h.describe())
	h = &hostTuning{WorkerFIFO: true, WorkerPriority: 1, FIFOThreads: 12, RTRuntimeUs: "-1", RTRuntimeBefore: "950000"}
	assert.Equal(t, "Host settings for the run: natgw's worker thread SCHED_FIFO (priority 1), set by natgw (`dataplane.worker_priority = 1`) "+
		"and checked on the `worker pinned` thread of each of 12 natgw starts; kernel.sched_rt_runtime_us -1 (was 950000); vm.stat_interval left alone.",
		h.describe())
	h = &hostTuning{Warnings: []string{"vm.stat_interval 120: permission denied"}}
	assert.Equal(t, "Host settings for the run: natgw's worker at the normal scheduling policy; vm.stat_interval left alone. "+
		"Not made: vm.stat_interval 120: permission denied.", h.describe())
}
