package deploy

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// This file checks the Dockerfile: every shared library natgw needs comes
// from a package its runtime stage installs, and, where Docker runs, the
// image builds and natgw starts in it.

// baseImagePackages are the packages natgw's libraries may come from
// without the runtime stage installing them: the C library, which every
// Debian image (debian:bookworm-slim included) has.
var baseImagePackages = []string{"libc6"}

// requireDPDKHost skips the test where natgw can't be built with DPDK or
// its libraries can't be mapped to Debian packages; with
// NATGW_REQUIRE_TESTBED=1 (CI, after scripts/install-deps.sh) it fails
// instead.
func requireDPDKHost(t *testing.T) {
	t.Helper()
	skip := t.Skipf
	if os.Getenv("NATGW_REQUIRE_TESTBED") == "1" {
		skip = t.Fatalf
	}
	for _, c := range []string{"go", "ldd", "dpkg", "pkg-config"} {
		if _, err := exec.LookPath(c); err != nil {
			skip("%s not found: the Dockerfile's libraries are checked on a Debian host with Go", c)
		}
	}
	if err := exec.Command("pkg-config", "--exists", "libdpdk").Run(); err != nil {
		skip("pkg-config libdpdk fails: DPDK is not installed (scripts/install-deps.sh)")
	}
}

// buildNatgwDPDK builds natgw with the DPDK driver, as the image's build
// stage does, into a temporary directory and returns the binary's path.
func buildNatgwDPDK(t *testing.T) string {
	t.Helper()
	bin := filepath.Join(t.TempDir(), "natgw")
	cmd := exec.Command("go", "build", "-trimpath", "-tags", "dpdk", "-o", bin, "./app")
	cmd.Dir = ".."
	out, err := cmd.CombinedOutput()
	require.NoError(t, err, "go build -tags dpdk ./app:\n%s", out)
	return bin
}

// lddLine is one library line of ldd: "name => path (address)" or
// "path (address)".
var lddLine = regexp.MustCompile(`^\s*(\S+)(?:\s+=>\s+(\S+))?\s+\(0x[0-9a-f]+\)\s*$`)

// sharedLibraries returns the paths of the shared libraries ldd says bin
// loads (the vDSO, which is no file, left out).
func sharedLibraries(t *testing.T, bin string) []string {
	t.Helper()
	out, err := exec.Command("ldd", bin).CombinedOutput()
	require.NoError(t, err, "ldd %s:\n%s", bin, out)
	var libs []string
	sc := bufio.NewScanner(strings.NewReader(string(out)))
	for sc.Scan() {
		line := sc.Text()
		require.NotContains(t, line, "not found", "natgw needs a library this host lacks")
		m := lddLine.FindStringSubmatch(line)
		require.NotNil(t, m, "unexpected ldd line %q", line)
		path := m[2]
		if path == "" {
			path = m[1]
		}
		if !strings.HasPrefix(path, "/") {
			continue // linux-vdso.so.1
		}
		libs = append(libs, path)
	}
	require.NotEmpty(t, libs)
	return libs
}

// packageOf returns the Debian package that owns a library file, asking
// dpkg -S about the path ldd printed, the file it links to, and the same
// paths with or without /usr (Debian 12 merges /lib into /usr/lib, and
// dpkg knows each file under the name its package ships it).
func packageOf(t *testing.T, path string) string {
	t.Helper()
	candidates := []string{path}
	if real, err := filepath.EvalSymlinks(path); err == nil && real != path {
		candidates = append(candidates, real)
	}
	for _, p := range slices.Clone(candidates) {
		if rest, ok := strings.CutPrefix(p, "/usr/"); ok {
			candidates = append(candidates, "/"+rest)
		} else {
			candidates = append(candidates, "/usr"+p)
		}
	}
	for _, p := range candidates {
		out, err := exec.Command("dpkg", "-S", p).Output()
		if err != nil {
			continue
		}
		// "librte-eal23:amd64: /usr/lib/x86_64-linux-gnu/librte_eal.so.23"
		pkg, _, ok := strings.Cut(strings.TrimSpace(string(out)), ": ")
		if !ok || strings.Contains(pkg, ",") {
			continue // a diversion, or several packages: not an answer
		}
		pkg, _, _ = strings.Cut(pkg, ":")
		return pkg
	}
	t.Fatalf("no Debian package owns %s (dpkg -S on %v)", path, candidates)
	return ""
}

// runtimeInstallList returns the packages the last stage of a Dockerfile
// installs with apt-get install.
func runtimeInstallList(dockerfile string) ([]string, error) {
	var instructions []string
	cont, from := false, false // the previous line ended in a backslash; a FROM was seen
	for _, line := range strings.Split(dockerfile, "\n") {
		line = strings.TrimSpace(line)
		if line == "" || strings.HasPrefix(line, "#") {
			continue // Docker drops comment lines, inside instructions too
		}
		more := strings.HasSuffix(line, "\\")
		line = strings.TrimSuffix(line, "\\")
		switch {
		case cont:
			instructions[len(instructions)-1] += " " + line
		case strings.HasPrefix(strings.ToUpper(line), "FROM "):
			instructions = []string{line} // a new stage: only the last one is the image
			from = true
		default:
			instructions = append(instructions, line)
		}
		cont = more
	}
	if !from {
		return nil, errors.New("no FROM in the Dockerfile")
	}
	var pkgs []string
	for _, in := range instructions {
		fields := strings.Fields(in)
		if !strings.EqualFold(fields[0], "RUN") {
			continue
		}
		for i := 1; i+1 < len(fields); i++ {
			if fields[i] != "apt-get" || !slices.Contains(fields[i+1:], "install") {
				continue
			}
			j := i + 1 + slices.Index(fields[i+1:], "install") + 1
			for ; j < len(fields) && !slices.Contains([]string{"&&", "||", ";", "|"}, fields[j]); j++ {
				if !strings.HasPrefix(fields[j], "-") {
					pkgs = append(pkgs, fields[j])
				}
			}
			i = j
		}
	}
	if len(pkgs) == 0 {
		return nil, errors.New("the runtime stage installs no package with apt-get install")
	}
	return pkgs, nil
}

// missingLibraries returns, for each library whose package is neither in
// installed nor in baseImagePackages, "library (package)".
func missingLibraries(libPackages map[string]string, installed []string) []string {
	var missing []string
	for lib, pkg := range libPackages {
		if !slices.Contains(installed, pkg) && !slices.Contains(baseImagePackages, pkg) {
			missing = append(missing, fmt.Sprintf("%s (package %s)", lib, pkg))
		}
	}
	slices.Sort(missing)
	return missing
}

func TestRuntimeInstallList(t *testing.T) {
	df := "ARG X=1\nFROM golang AS build\nRUN apt-get update && apt-get install -y make gcc\n" +
		"FROM debian AS runtime\nRUN apt-get update \\\n\t&& apt-get install -y --no-install-recommends \\\n" +
		"\t\tlibfoo1 libbar2 \\\n# a comment inside the instruction\n\t\tcurl \\\n\t&& rm -rf /var/lib/apt/lists/*\nCOPY x y\n"
	pkgs, err := runtimeInstallList(df)
	require.NoError(t, err)
	assert.Equal(t, []string{"libfoo1", "libbar2", "curl"}, pkgs)
	_, err = runtimeInstallList("FROM debian\nCOPY x y\n")
	assert.Error(t, err)
	_, err = runtimeInstallList("RUN apt-get install -y curl\n")
	assert.Error(t, err)
}

// TestDockerfileLibraries builds natgw with DPDK, maps every shared library
// ldd lists to the Debian package that owns it on this host (Debian 12,
// the image's release), and checks that the Dockerfile's runtime stage
// installs each of those packages; and that the check catches a Dockerfile
// that leaves one out.
func TestDockerfileLibraries(t *testing.T) {
	requireDPDKHost(t)
	libPackages := map[string]string{}
	for _, lib := range sharedLibraries(t, buildNatgwDPDK(t)) {
		libPackages[filepath.Base(lib)] = packageOf(t, lib)
	}
	t.Logf("natgw's libraries and their packages: %v", libPackages)
	require.Contains(t, libPackages, "librte_eal.so.23", "natgw was built without its DPDK driver")
	dockerfile := string(readRepoFile(t, "Dockerfile"))
	installed, err := runtimeInstallList(dockerfile)
	require.NoError(t, err)
	assert.Empty(t, missingLibraries(libPackages, installed),
		"natgw needs these libraries, whose packages the Dockerfile's runtime stage does not install")

	t.Run("a Dockerfile without librte-mempool23 fails", func(t *testing.T) {
		broken := strings.Replace(dockerfile, "librte-mempool23 ", "", 1)
		require.NotEqual(t, dockerfile, broken)
		installed, err := runtimeInstallList(broken)
		require.NoError(t, err)
		assert.Equal(t, []string{"librte_mempool.so.23 (package librte-mempool23)"}, missingLibraries(libPackages, installed))
	})
}

// TestDockerBuild builds the image with Docker and runs natgw version in it
// (which loads every shared library natgw links against). Docker is not a
// requirement of the tests: without a reachable Docker daemon the test is
// skipped and says so.
func TestDockerBuild(t *testing.T) {
	if testing.Short() {
		t.Skip("the image is not built in -short mode")
	}
	if _, err := exec.LookPath("docker"); err != nil {
		t.Skip("Docker is not installed: the image is not built (TestDockerfileLibraries checks its libraries)")
	}
	if out, err := exec.Command("docker", "info", "--format", "{{.ServerVersion}}").CombinedOutput(); err != nil {
		first, _, _ := strings.Cut(strings.TrimSpace(string(out)), "\n")
		t.Skipf("Docker is installed but its daemon is not reachable (%s): the image is not built", first)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Minute)
	defer cancel()
	tag := fmt.Sprintf("natgw:test-%d", os.Getpid())
	build := exec.CommandContext(ctx, "docker", "build", "-t", tag, "--build-arg", "VERSION=docker-test", ".")
	build.Dir = ".."
	out, err := build.CombinedOutput()
	require.NoError(t, err, "docker build:\n%s", out)
	t.Cleanup(func() {
		if out, err := exec.Command("docker", "image", "rm", "-f", tag).CombinedOutput(); err != nil {
			t.Logf("docker image rm %s: %v: %s", tag, err, out)
		}
	})
	out, err = exec.CommandContext(ctx, "docker", "run", "--rm", tag, "version").CombinedOutput()
	require.NoError(t, err, "natgw version in the image:\n%s", out)
	assert.True(t, strings.HasPrefix(string(out), "natgw docker-test "), "natgw version printed %q", out)
}
