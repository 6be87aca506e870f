package deploy

import (
	"bufio"
	"bytes"
	"encoding/json"
	"errors"
	"net"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/natgw/natgw/mgmt"
	"github.com/natgw/natgw/mgmt/config"
)

// This file checks the deployment material of issue 7: the example
// production configuration, deploy/setup-host.sh, the systemd unit, the
// Prometheus rules, the Grafana dashboard and docs/OPERATIONS.md
// (dockerfile_test.go checks the Dockerfile).

// repoFile returns the path of a file given relative to the repository root.
func repoFile(name string) string { return filepath.Join("..", filepath.FromSlash(name)) }

// readRepoFile reads a file of the repository, failing the test when it
// can't.
func readRepoFile(t *testing.T, name string) []byte {
	t.Helper()
	b, err := os.ReadFile(repoFile(name))
	require.NoError(t, err)
	return b
}

// runScript runs a shell script of the repository with bash and returns
// its combined output and exit code.
func runScript(t *testing.T, env []string, script string, args ...string) (string, int) {
	t.Helper()
	cmd := exec.Command("bash", append([]string{script}, args...)...)
	cmd.Env = append(os.Environ(), env...)
	out, err := cmd.CombinedOutput()
	var exit *exec.ExitError
	if errors.As(err, &exit) {
		return string(out), exit.ExitCode()
	}
	require.NoError(t, err, "running %s", script)
	return string(out), 0
}

// TestExampleConfigs loads the example configurations with the real loader
// (config.Load, what natgw validate and natgw run use) and checks that the
// production example shows what an operator needs.
func TestExampleConfigs(t *testing.T) {
	tests := []struct {
		name  string
		file  string
		check func(t *testing.T, c *config.Config)
	}{
		{
			name: "production example",
			file: "deploy/natgw.toml",
			check: func(t *testing.T, c *config.Config) {
				assert.Equal(t, "dpdk", c.Dataplane.Driver)
				assert.Greater(t, c.Dataplane.Workers, 1)
				for _, port := range []string{c.Inside.Port, c.Outside.Port} {
					assert.Regexp(t, `^[0-9a-f]{4}:[0-9a-f]{2}:[0-9a-f]{2}\.[0-7]$`, port, "a PCI address")
					assert.True(t, hasArgPair(c.Dataplane.EALArgs, "-a", port), "eal_args allow %s with -a", port)
				}
				for _, flag := range []string{"-l", "--socket-mem"} {
					assert.Contains(t, c.Dataplane.EALArgs, flag)
				}
				assert.GreaterOrEqual(t, len(c.Frontends), 2)
				assert.NotEmpty(t, c.Pools)
				assert.NotEmpty(t, c.Instances)
				require.NotNil(t, c.DefaultSNAT)
				assert.NotEmpty(t, c.Deny)
				assert.NotEmpty(t, c.Mgmt.TokenFile)
				assert.False(t, c.Mgmt.AllowInsecure)
				assert.True(t, slices.ContainsFunc(c.Pools, func(p config.Pool) bool { return len(p.Frontends) >= 2 }),
					"one pool shows a pool that needs two frontends")
			},
		},
		{
			name:  "demo (AF_PACKET testbed)",
			file:  "scripts/demo.toml",
			check: func(t *testing.T, c *config.Config) { assert.Equal(t, "afpacket", c.Dataplane.Driver) },
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c, err := config.Load(repoFile(tt.file))
			require.NoError(t, err)
			tt.check(t, c)
		})
	}
}

// hasArgPair reports whether args holds flag immediately followed by value.
func hasArgPair(args []string, flag, value string) bool {
	for i := 0; i+1 < len(args); i++ {
		if args[i] == flag && args[i+1] == value {
			return true
		}
	}
	return false
}

// FuzzLoadDeployConfig feeds mutations of the example configurations to
// the configuration loader (config.Load, through a file): it must never
// panic, must report every failure as a non-empty config.Errors naming a
// key or a line, and an accepted configuration must validate again and
// never expose the management API to other hosts without a token unless
// allow_insecure says so.
//
// Fuzz it with a short minimisation time: the seeds are whole files, and the
// default (60 s to minimise each new input) leaves almost no time to fuzz:
//
//	go test -run '^$' -fuzz FuzzLoadDeployConfig -fuzzminimizetime 1s -fuzztime 5m ./deploy/
func FuzzLoadDeployConfig(f *testing.F) {
	for _, name := range []string{"deploy/natgw.toml", "scripts/demo.toml"} {
		b, err := os.ReadFile(repoFile(name))
		require.NoError(f, err)
		f.Add(b)
	}
	prod, err := os.ReadFile(repoFile("deploy/natgw.toml"))
	require.NoError(f, err)
	f.Add(bytes.Replace(prod, []byte(`token_file = "/etc/natgw/token"`), nil, 1))
	f.Add(bytes.Replace(prod, []byte(`ports_per_member = 2048`), []byte(`ports_per_member = 8192`), 1))
	f.Add(bytes.Replace(prod, []byte(`"0000:3b:00.1"`), []byte(`"0000:3b:00.0"`), -1))
	dir := f.TempDir()
	f.Fuzz(func(t *testing.T, data []byte) {
		path := filepath.Join(dir, "natgw.toml")
		require.NoError(t, os.WriteFile(path, data, 0o600))
		c, err := config.Load(path)
		if err != nil {
			var errs config.Errors
			require.True(t, errors.As(err, &errs), "error %T is not config.Errors: %v", err, err)
			require.NotEmpty(t, errs)
			for _, e := range errs {
				assert.True(t, e.Key != "" || e.Line > 0, "error names neither key nor line: %v", e)
			}
			return
		}
		require.NoError(t, c.Validate())
		host, _, err := net.SplitHostPort(c.Mgmt.Listen)
		require.NoError(t, err)
		if a, err := netip.ParseAddr(host); host != "localhost" && (err != nil || !a.IsLoopback()) {
			assert.True(t, c.Mgmt.TokenFile != "" || c.Mgmt.AllowInsecure,
				"mgmt.listen %q is reachable from other hosts without a token", c.Mgmt.Listen)
		}
	})
}

// defaultRouteNIC returns the PCI address of the NIC that carries this
// host's default route, or "" when there is none or it is not a PCI device.
func defaultRouteNIC(t *testing.T) string {
	t.Helper()
	out, err := exec.Command("ip", "-o", "route", "show", "default").Output()
	if err != nil {
		return ""
	}
	fields := strings.Fields(string(out))
	i := slices.Index(fields, "dev")
	if i < 0 || i+1 >= len(fields) {
		return ""
	}
	dev, err := filepath.EvalSymlinks("/sys/class/net/" + fields[i+1] + "/device")
	if err != nil {
		return ""
	}
	pci := regexp.MustCompile(`^[0-9a-f]{4}:[0-9a-f]{2}:[0-9a-f]{2}\.[0-7]$`)
	for ; dev != "/" && dev != "."; dev = filepath.Dir(dev) {
		if pci.MatchString(filepath.Base(dev)) {
			return filepath.Base(dev)
		}
	}
	return ""
}

// fakeSysfs builds a sysfs tree with two NICs in their own IOMMU groups:
// 0000:3b:00.0 on ixgbe (interface fake-nic0) and 0000:3b:00.1 already on
// vfio-pci, eight online cores on NUMA node 0, and 2 MB hugepages.
func fakeSysfs(t *testing.T) string {
	t.Helper()
	root := t.TempDir()
	write := func(name, content string) {
		p := filepath.Join(root, name)
		require.NoError(t, os.MkdirAll(filepath.Dir(p), 0o755))
		require.NoError(t, os.WriteFile(p, []byte(content), 0o644))
	}
	link := func(name, target string) {
		p := filepath.Join(root, name)
		require.NoError(t, os.MkdirAll(filepath.Dir(p), 0o755))
		require.NoError(t, os.Symlink(target, p))
	}
	write("kernel/mm/hugepages/hugepages-2048kB/nr_hugepages", "1024\n")
	write("devices/system/cpu/online", "0-7\n")
	for c := 0; c < 8; c++ {
		require.NoError(t, os.MkdirAll(filepath.Join(root, "devices/system/cpu/cpu"+string(rune('0'+c))+"/node0"), 0o755))
	}
	for _, d := range []string{"ixgbe", "vfio-pci"} {
		require.NoError(t, os.MkdirAll(filepath.Join(root, "bus/pci/drivers", d), 0o755))
	}
	for i, nic := range []struct{ pci, driver, group string }{
		{"0000:3b:00.0", "ixgbe", "40"},
		{"0000:3b:00.1", "vfio-pci", "41"},
	} {
		dev := "bus/pci/devices/" + nic.pci
		write(dev+"/class", "0x020000\n")
		write(dev+"/numa_node", "0\n")
		link(dev+"/driver", "../../drivers/"+nic.driver)
		link(dev+"/iommu_group", "../../../../kernel/iommu_groups/"+nic.group)
		link("kernel/iommu_groups/"+nic.group+"/devices/"+nic.pci, "../../../../bus/pci/devices/"+nic.pci)
		if nic.driver != "vfio-pci" {
			require.NoError(t, os.MkdirAll(filepath.Join(root, dev, "net", "fake-nic"+string(rune('0'+i))), 0o755))
		}
	}
	return root
}

// dryRunTouches lists the files setup-host.sh may write; a dry run must
// leave each as it was.
var dryRunTouches = []string{
	"/etc/sysctl.d/80-natgw-hugepages.conf", "/etc/modules-load.d/natgw-vfio.conf", "/etc/fstab",
	"/etc/systemd/system/dev-hugepages1G.mount",
}

// snapshot returns the contents of files ("" for a missing one).
func snapshot(files []string) map[string]string {
	m := make(map[string]string, len(files))
	for _, f := range files {
		b, err := os.ReadFile(f)
		if err != nil {
			m[f] = "<" + err.Error() + ">"
			continue
		}
		m[f] = string(b)
	}
	return m
}

// TestSetupHostDryRun runs deploy/setup-host.sh --dry-run on this host (a
// VM without NICs for DPDK: it must say so and exit 0) and on a fake sysfs
// with NICs, and checks that a dry run changes nothing and that a NIC
// carrying the default route is refused.
func TestSetupHostDryRun(t *testing.T) {
	if _, err := exec.LookPath("bash"); err != nil {
		t.Skip("bash not installed")
	}
	sysfs := fakeSysfs(t)
	cmdline := filepath.Join(t.TempDir(), "cmdline")
	require.NoError(t, os.WriteFile(cmdline, []byte("ro quiet iommu=pt nohz_full=2-6 rcu_nocbs=2-6\n"), 0o644))
	fake := []string{"NATGW_SETUP_SYSFS=" + sysfs, "NATGW_SETUP_CMDLINE=" + cmdline}
	tests := []struct {
		name     string
		env      []string
		args     []string
		exit     int
		contains []string
		excludes []string
	}{
		{
			name:     "this host, no NIC given: a report, exit 0",
			args:     []string{"--dry-run"},
			contains: []string{"dry run: nothing will be changed", "[hugepages]", "[iommu]", "[nics]", "[cpus]", "dry run: nothing changed"},
		},
		{
			name:     "this host, production config: missing NICs reported, exit 0",
			args:     []string{"--dry-run", "--config", repoFile("deploy/natgw.toml")},
			contains: []string{"0000:3b:00.0", "0000:3b:00.1", "dry run: nothing changed"},
		},
		{
			name:     "demo config names interfaces, not PCI devices",
			args:     []string{"-n", "-v", "--no-bind", "--config", repoFile("scripts/demo.toml")},
			contains: []string{"ports veth-in veth-out, 2 workers", "--no-bind: NICs left alone"},
		},
		{
			name:     "fake host: the kernel NIC is bound, the vfio one left alone",
			env:      fake,
			args:     []string{"--dry-run", "-v", "--nic", "3b:00.0", "--nic", "0000:3b:00.1", "--cores", "2-6"},
			contains: []string{"0000:3b:00.0 (driver ixgbe, interface fake-nic0, NUMA node 0) goes to vfio-pci", "0000:3b:00.1 is bound to vfio-pci", "IOMMU on: 2 groups", "nohz_full covers 2-6", "rcu_nocbs covers 2-6"},
			excludes: []string{"dpdk-devbind.py --bind=vfio-pci 0000:3b:00.1", "nohz_full=2-6", "is off"},
		},
		{
			name:     "fake host: too few cores for the workers",
			env:      fake,
			args:     []string{"--dry-run", "--config", repoFile("deploy/natgw.toml"), "--cores", "2-3"},
			contains: []string{"--cores 2-3 gives 2 core(s); natgw needs 5 (4 workers + the management core)", "a real run would stop"},
		},
		{
			name:     "fake host: isolation missing is advice",
			env:      fake,
			args:     []string{"--dry-run", "--no-bind", "--cores", "6-7"},
			contains: []string{"nohz_full=6-7", "rcu_nocbs=6-7"},
		},
		{
			name:     "unknown argument",
			args:     []string{"--dry-run", "--frobnicate"},
			exit:     2,
			contains: []string{"unknown argument: --frobnicate"},
		},
		{
			name:     "bad hugepage count",
			args:     []string{"--dry-run", "--hugepages", "lots"},
			exit:     1,
			contains: []string{"--hugepages must be a number"},
		},
	}
	if nic := defaultRouteNIC(t); nic != "" {
		tests = append(tests, struct {
			name     string
			env      []string
			args     []string
			exit     int
			contains []string
			excludes []string
		}{
			name:     "the NIC of the default route is refused",
			args:     []string{"--dry-run", "--nic", nic},
			exit:     1,
			contains: []string{"refused: " + nic, "carries the default route"},
			excludes: []string{"would run: dpdk-devbind.py"},
		})
	} else {
		t.Log("no PCI NIC carries the default route here: the refusal case is not run")
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			before := snapshot(dryRunTouches)
			out, code := runScript(t, tt.env, "setup-host.sh", tt.args...)
			t.Logf("setup-host.sh %s:\n%s", strings.Join(tt.args, " "), out)
			assert.Equal(t, tt.exit, code)
			for _, s := range tt.contains {
				assert.Contains(t, out, s)
			}
			for _, s := range tt.excludes {
				assert.NotContains(t, out, s)
			}
			assert.Equal(t, before, snapshot(dryRunTouches), "a dry run changed a file")
		})
	}
}

// unitFile is a systemd unit: section -> key -> values (keys may repeat).
type unitFile map[string]map[string][]string

// parseUnit reads a systemd unit file.
func parseUnit(t *testing.T, b []byte) unitFile {
	t.Helper()
	u := unitFile{}
	section := ""
	sc := bufio.NewScanner(bytes.NewReader(b))
	for n := 1; sc.Scan(); n++ {
		line := strings.TrimSpace(sc.Text())
		switch {
		case line == "" || strings.HasPrefix(line, "#") || strings.HasPrefix(line, ";"):
		case strings.HasPrefix(line, "[") && strings.HasSuffix(line, "]"):
			section = line[1 : len(line)-1]
			u[section] = map[string][]string{}
		default:
			key, value, ok := strings.Cut(line, "=")
			require.True(t, ok, "line %d: %q is not key=value", n, line)
			require.NotEmpty(t, section, "line %d: key outside a section", n)
			u[section][key] = append(u[section][key], value)
		}
	}
	require.NoError(t, sc.Err())
	return u
}

// TestServiceUnit checks the settings the systemd unit must have and, when
// systemd-analyze is installed, verifies the unit with it.
func TestServiceUnit(t *testing.T) {
	b := readRepoFile(t, "deploy/natgw.service")
	u := parseUnit(t, b)
	tests := []struct {
		section, key string
		want         []string
	}{
		{"Service", "Type", []string{"simple"}},
		{"Service", "ExecStart", []string{"/usr/local/bin/natgw run --config /etc/natgw/natgw.toml"}},
		{"Service", "ExecReload", []string{"/usr/local/bin/natgw validate --config /etc/natgw/natgw.toml", "/bin/kill -HUP $MAINPID"}},
		{"Service", "Restart", []string{"on-failure"}},
		{"Service", "LimitMEMLOCK", []string{"infinity"}},
		{"Service", "NoNewPrivileges", []string{"yes"}},
		{"Service", "ProtectSystem", []string{"strict"}},
		{"Service", "ProtectHome", []string{"yes"}},
		{"Unit", "After", []string{"network-online.target", "systemd-modules-load.service"}},
		{"Unit", "Wants", []string{"network-online.target"}},
		{"Install", "WantedBy", []string{"multi-user.target"}},
	}
	for _, tt := range tests {
		t.Run(tt.section+"."+tt.key, func(t *testing.T) {
			require.Contains(t, u, tt.section)
			assert.Equal(t, tt.want, u[tt.section][tt.key])
		})
	}
	t.Run("restart limits", func(t *testing.T) {
		assert.NotEmpty(t, u["Service"]["RestartSec"])
		assert.NotEmpty(t, u["Unit"]["StartLimitIntervalSec"])
		assert.NotEmpty(t, u["Unit"]["StartLimitBurst"])
	})
	t.Run("capabilities", func(t *testing.T) {
		require.Len(t, u["Service"]["CapabilityBoundingSet"], 1)
		caps := strings.Fields(u["Service"]["CapabilityBoundingSet"][0])
		for _, c := range []string{"CAP_NET_ADMIN", "CAP_NET_RAW", "CAP_IPC_LOCK", "CAP_SYS_ADMIN"} {
			assert.Contains(t, caps, c)
			assert.Contains(t, string(b), "#   "+c, "the unit says why it needs %s", c)
		}
	})
	t.Run("hardening that would break DPDK is off", func(t *testing.T) {
		for _, key := range []string{"PrivateDevices", "PrivateNetwork", "MemoryDenyWriteExecute"} {
			assert.NotContains(t, u["Service"], key)
		}
		assert.Contains(t, u["Service"]["RestrictAddressFamilies"][0], "AF_PACKET")
	})
	t.Run("systemd-analyze verify", func(t *testing.T) {
		if _, err := exec.LookPath("systemd-analyze"); err != nil {
			t.Skip("systemd-analyze not installed")
		}
		// The binary must exist for verify: stand the test binary in.
		self, err := os.Executable()
		require.NoError(t, err)
		unit := filepath.Join(t.TempDir(), "natgw.service")
		require.NoError(t, os.WriteFile(unit, bytes.ReplaceAll(b, []byte("/usr/local/bin/natgw"), []byte(self)), 0o644))
		out, err := exec.Command("systemd-analyze", "verify", unit).CombinedOutput()
		assert.NoError(t, err)
		assert.Empty(t, strings.TrimSpace(string(out)), "systemd-analyze verify has remarks")
	})
}

// promqlWords are the identifiers of PromQL that are not metric names.
var promqlWords = map[string]bool{
	"sum": true, "min": true, "max": true, "avg": true, "count": true, "rate": true, "irate": true,
	"increase": true, "changes": true, "by": true, "without": true, "on": true, "ignoring": true,
	"group_left": true, "group_right": true, "and": true, "or": true, "unless": true,
	"histogram_quantile": true, "topk": true, "bottomk": true, "delta": true, "deriv": true,
	"clamp_min": true, "clamp_max": true, "abs": true, "label_values": true, "bool": true, "offset": true,
	"avg_over_time": true, "max_over_time": true, "min_over_time": true, "absent": true,
}

var (
	promqlStrings   = regexp.MustCompile(`"(?:[^"\\]|\\.)*"`)
	promqlMatchers  = regexp.MustCompile(`\{[^}]*\}`)
	promqlRanges    = regexp.MustCompile(`\[[^\]]*\]`)
	promqlLabelList = regexp.MustCompile(`\b(by|without|on|ignoring|group_left|group_right)\s*\([^)]*\)`)
	promqlIdent     = regexp.MustCompile(`[a-zA-Z_:][a-zA-Z0-9_:]*`)
	promqlNumber    = regexp.MustCompile(`\b[0-9][0-9.e]*\b`)
)

// promqlMetrics returns the metric names a PromQL expression refers to.
func promqlMetrics(expr string) []string {
	s := promqlStrings.ReplaceAllString(expr, " ")
	s = promqlMatchers.ReplaceAllString(s, " ")
	s = promqlRanges.ReplaceAllString(s, " ")
	s = promqlLabelList.ReplaceAllString(s, " ")
	s = promqlNumber.ReplaceAllString(s, " ")
	var names []string
	for _, w := range promqlIdent.FindAllString(s, -1) {
		if !promqlWords[w] && !slices.Contains(names, w) {
			names = append(names, w)
		}
	}
	return names
}

// allowedMetric reports whether name is a metric natgw exports: its own
// (mgmt.MetricNames), or from the Go runtime and process collectors; up
// is allowed when upOK.
func allowedMetric(name string, upOK bool) bool {
	return slices.Contains(mgmt.MetricNames(), name) || strings.HasPrefix(name, "go_") ||
		strings.HasPrefix(name, "process_") || (upOK && name == "up")
}

func TestPromqlMetrics(t *testing.T) {
	tests := []struct {
		expr string
		want []string
	}{
		{`sum by (instance, pool) (rate(natgw_snat_port_exhaustion_total[5m])) > 0`, []string{"natgw_snat_port_exhaustion_total"}},
		{`8 * sum by (direction) (rate(natgw_bytes_total{instance=~"$instance"}[$__rate_interval]))`, []string{"natgw_bytes_total"}},
		{`a_total / on (instance) group_left b{x="sum(y)"} and up == 0`, []string{"a_total", "b", "up"}},
	}
	for _, tt := range tests {
		t.Run(tt.expr, func(t *testing.T) {
			assert.Equal(t, tt.want, promqlMetrics(tt.expr))
		})
	}
}

// alertRule is one rule of deploy/prometheus-alerts.yml as the line reader
// below sees it.
type alertRule struct {
	name, expr           string
	severity, summary    bool
	exprLine, alertLine  int
	annotationsAndLabels int
}

// readAlerts reads the rules of a Prometheus rule file written in the
// layout of deploy/prometheus-alerts.yml (a line reader, not YAML in
// general; promtool checks the YAML itself where it is installed).
func readAlerts(t *testing.T, b []byte) []alertRule {
	t.Helper()
	var rules []alertRule
	lines := strings.Split(string(b), "\n")
	for i := 0; i < len(lines); i++ {
		line := strings.TrimSpace(lines[i])
		switch {
		case strings.HasPrefix(line, "- alert:"):
			rules = append(rules, alertRule{name: strings.TrimSpace(strings.TrimPrefix(line, "- alert:")), alertLine: i + 1})
		case len(rules) == 0:
		case strings.HasPrefix(line, "expr:"):
			r := &rules[len(rules)-1]
			r.exprLine = i + 1
			expr := strings.TrimSpace(strings.TrimPrefix(line, "expr:"))
			if expr == "|" {
				indent := len(lines[i+1]) - len(strings.TrimLeft(lines[i+1], " "))
				var block []string
				for i+1 < len(lines) && len(lines[i+1])-len(strings.TrimLeft(lines[i+1], " ")) >= indent && strings.TrimSpace(lines[i+1]) != "" {
					i++
					block = append(block, strings.TrimSpace(lines[i]))
				}
				expr = strings.Join(block, " ")
			}
			r.expr = expr
		case strings.HasPrefix(line, "severity:"):
			rules[len(rules)-1].severity = true
		case strings.HasPrefix(line, "summary:"):
			rules[len(rules)-1].summary = true
		case line == "labels:" || line == "annotations:":
			rules[len(rules)-1].annotationsAndLabels++
		}
	}
	return rules
}

// TestPrometheusAlerts checks the alert rules: promtool accepts them (when
// installed), each has an expression over SPEC §7 metrics only, a severity
// and a summary, the alerts the issue asks for exist, and OPERATIONS.md
// describes every one.
func TestPrometheusAlerts(t *testing.T) {
	b := readRepoFile(t, "deploy/prometheus-alerts.yml")
	rules := readAlerts(t, b)
	require.NotEmpty(t, rules)
	ops := string(readRepoFile(t, "docs/OPERATIONS.md"))
	for _, r := range rules {
		t.Run(r.name, func(t *testing.T) {
			require.NotEmpty(t, r.expr, "line %d: no expr", r.alertLine)
			metrics := promqlMetrics(r.expr)
			assert.NotEmpty(t, metrics)
			for _, m := range metrics {
				assert.True(t, allowedMetric(m, true), "line %d: %s is not a SPEC §7 metric", r.exprLine, m)
			}
			assert.True(t, r.severity, "no severity label")
			assert.True(t, r.summary, "no summary annotation")
			assert.Contains(t, ops, r.name, "docs/OPERATIONS.md does not describe %s", r.name)
			assert.Contains(t, ops, r.expr, "docs/OPERATIONS.md has another expression for %s", r.name)
		})
	}
	t.Run("the issue's alerts", func(t *testing.T) {
		var exprs []string
		for _, r := range rules {
			exprs = append(exprs, r.expr)
		}
		all := strings.Join(exprs, "\n")
		for _, want := range []string{
			"natgw_snat_port_exhaustion_total", // exhaustion rising
			"natgw_snat_port_utilization_max) > 0.8",
			"natgw_worker_busy_ratio", // stalled or saturated workers
			"natgw_port_link_up == 0",
			`natgw_config_reloads_total{result="error"}`,
		} {
			assert.Contains(t, all, want)
		}
	})
	t.Run("promtool check rules", func(t *testing.T) {
		needPromtool(t)
		out, err := exec.Command("promtool", "check", "rules", repoFile("deploy/prometheus-alerts.yml")).CombinedOutput()
		assert.NoError(t, err, "%s", out)
		assert.Contains(t, string(out), "SUCCESS")
	})
	// The rules' own tests (issue 18: the exhaustion alerts fire on a
	// falling time to exhaustion, not on a flat pool).
	t.Run("promtool test rules", func(t *testing.T) {
		needPromtool(t)
		cmd := exec.Command("promtool", "test", "rules", "prometheus-alerts_test.yml")
		cmd.Dir = repoFile("deploy")
		out, err := cmd.CombinedOutput()
		assert.NoError(t, err, "%s", out)
		assert.Contains(t, string(out), "SUCCESS")
	})
}

// needPromtool skips the test without promtool, or fails it under
// NATGW_REQUIRE_E2E=1 (scripts/install-deps.sh installs it).
func needPromtool(t *testing.T) {
	t.Helper()
	if _, err := exec.LookPath("promtool"); err != nil {
		if os.Getenv("NATGW_REQUIRE_E2E") == "1" {
			t.Fatal("promtool not installed (run scripts/install-deps.sh) and NATGW_REQUIRE_E2E=1")
		}
		t.Skip("promtool not installed (apt-get install prometheus)")
	}
}

// dashboardPanel is the part of a Grafana panel the test reads.
type dashboardPanel struct {
	Title   string           `json:"title"`
	Type    string           `json:"type"`
	Panels  []dashboardPanel `json:"panels"`
	Targets []struct {
		Expr string `json:"expr"`
	} `json:"targets"`
}

// TestGrafanaDashboard checks that the dashboard is valid JSON, that every
// query uses metric names natgw exports only, and that every metric of
// SPEC §7, and the NAT log's and BGP's main ones, are on it.
func TestGrafanaDashboard(t *testing.T) {
	var d struct {
		Title       string           `json:"title"`
		UID         string           `json:"uid"`
		Panels      []dashboardPanel `json:"panels"`
		Annotations struct {
			List []struct {
				Expr string `json:"expr"`
			} `json:"list"`
		} `json:"annotations"`
	}
	require.NoError(t, json.Unmarshal(readRepoFile(t, "deploy/grafana-dashboard.json"), &d))
	require.NotEmpty(t, d.Title)
	require.NotEmpty(t, d.UID)
	exprs := map[string]string{} // expression -> panel title
	var walk func([]dashboardPanel)
	walk = func(ps []dashboardPanel) {
		for _, p := range ps {
			if p.Type != "row" {
				assert.NotEmpty(t, p.Targets, "panel %q has no query", p.Title)
			}
			for _, tg := range p.Targets {
				exprs[tg.Expr] = p.Title
			}
			walk(p.Panels)
		}
	}
	walk(d.Panels)
	for _, a := range d.Annotations.List {
		exprs[a.Expr] = "annotation"
	}
	require.NotEmpty(t, exprs)
	used := map[string]bool{}
	for expr, title := range exprs {
		t.Run(title+": "+expr, func(t *testing.T) {
			metrics := promqlMetrics(expr)
			assert.NotEmpty(t, metrics)
			for _, m := range metrics {
				used[m] = true
				assert.True(t, allowedMetric(m, false), "%s is not a SPEC §7 metric", m)
			}
		})
	}
	t.Run("every SPEC §7 metric is shown", func(t *testing.T) {
		for _, m := range mgmt.SpecMetricNames() {
			assert.True(t, used[m], "no panel shows %s", m)
		}
	})
	// Issue 16 and 17: the NAT event log and BGP, exported only when
	// configured, have panels too.
	t.Run("the NAT log and BGP metrics are shown", func(t *testing.T) {
		for _, m := range []string{
			"natgw_natlog_records_total", "natgw_natlog_export_errors_total", "natgw_natlog_dropped_total",
			"natgw_natlog_history_bytes", "natgw_bgp_peer_established", "natgw_bgp_routes_announced",
		} {
			assert.True(t, used[m], "no panel shows %s", m)
		}
	})
}

// TestOperationsGuide checks that docs/OPERATIONS.md covers what the issue
// asks for: every drop reason, the tier table, the reload limits.
func TestOperationsGuide(t *testing.T) {
	ops := string(readRepoFile(t, "docs/OPERATIONS.md"))
	for _, reason := range mgmt.DropReasons() {
		t.Run("drop reason "+reason, func(t *testing.T) {
			assert.Contains(t, ops, "### `"+reason+"`")
		})
	}
	for _, s := range []string{
		"| 1-50 | 1024 |", "| 801-1000 | 32 |", "64,512", // sizing
		"bytes per flow", "isolcpus", "NUMA", "AF_PACKET", // memory, cores, fallback
		"flow_capacity", "eal_args", "SIGHUP", // reloads
		"deploy/prometheus-alerts.yml", "deploy/grafana-dashboard.json",
		"--cap-add", "/dev/vfio", "/dev/hugepages", "--network host", // containers
	} {
		t.Run(s, func(t *testing.T) { assert.Contains(t, ops, s) })
	}
}
