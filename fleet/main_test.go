// Package fleet tests a worker fleet the way operators run one: a
// three-node JetStream cluster (the project's natsd), the function
// emulator and several worker processes, each in a container of its own
// on a private Docker network, with nodes killed, workers partitioned,
// restarted in turn, crashed, and the whole cluster restarted.
//
// The image is built from binaries this test builds (FROM scratch: no
// image is pulled, so it works with no registry), and the reaper is off
// (TESTCONTAINERS_RYUK_DISABLED=true): every container, volume and network
// is removed by the test's cleanup. Without a reachable Docker engine the
// tests skip.
package fleet

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/moby/moby/client"
	"github.com/testcontainers/testcontainers-go"
	tclog "github.com/testcontainers/testcontainers-go/log"
)

// imageRepo names the image the tests build; the tag is per run.
const imageRepo = "invoke-worker-fleettest"

// dockerfile is the image: the worker (entrypoint) and natsd, nothing
// else. No "# syntax" line: it would make BuildKit pull a frontend.
const dockerfile = `FROM scratch
COPY worker /worker
COPY natsd /natsd
ENTRYPOINT ["/worker"]
`

// image is built once per test binary, by the first test that needs it.
type image struct {
	once sync.Once
	tag  string
	err  error
	dir  string
}

var built image // written once under its sync.Once, read after

func TestMain(m *testing.M) {
	// The reaper needs an image from a registry; with it off, the tests
	// remove what they start. Exactly "true": other spellings read as
	// false. Set before the first testcontainers call reads its config.
	if err := os.Setenv("TESTCONTAINERS_RYUK_DISABLED", "true"); err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	// Published ports are bound to loopback. Where the test itself runs
	// in a container (/.dockerenv), testcontainers would look for them on
	// the Docker bridge's gateway instead.
	if _, set := os.LookupEnv("TESTCONTAINERS_HOST_OVERRIDE"); !set {
		if err := os.Setenv("TESTCONTAINERS_HOST_OVERRIDE", "127.0.0.1"); err != nil {
			fmt.Fprintln(os.Stderr, err)
			os.Exit(1)
		}
	}
	// Every container's start and stop would be printed otherwise; a
	// failing test prints its containers' output itself.
	tclog.SetDefault(tclog.NewNoopLogger())
	code := m.Run()
	if built.tag != "" {
		removeImage(built.tag)
	}
	if built.dir != "" {
		os.RemoveAll(built.dir)
	}
	os.Exit(code)
}

// fleetImage skips the test without a Docker engine, and otherwise
// returns the image's tag, building it on first use.
func fleetImage(t *testing.T) string {
	t.Helper()
	if testing.Short() {
		t.Skip("fleet tests start containers; skipped with -short")
	}
	testcontainers.SkipIfProviderIsNotHealthy(t)
	built.once.Do(func() { built.tag, built.dir, built.err = buildImage() })
	if built.err != nil {
		t.Fatalf("build the fleet image: %v", built.err)
	}
	return built.tag
}

// buildImage builds static binaries of the worker and natsd into a temp
// build context and the image from it.
func buildImage() (tag, dir string, err error) {
	dir, err = os.MkdirTemp("", "fleet-image-")
	if err != nil {
		return "", "", err
	}
	for _, pkg := range []string{"worker", "natsd"} {
		cmd := exec.Command("go", "build", "-o", filepath.Join(dir, pkg), "github.com/invoke-worker/worker/cmd/"+pkg)
		cmd.Env = append(os.Environ(), "CGO_ENABLED=0")
		if out, err := cmd.CombinedOutput(); err != nil {
			return "", dir, fmt.Errorf("go build %s: %w\n%s", pkg, err, out)
		}
	}
	if err := os.WriteFile(filepath.Join(dir, "Dockerfile"), []byte(dockerfile), 0o644); err != nil {
		return "", dir, err
	}
	provider, err := testcontainers.NewDockerProvider()
	if err != nil {
		return "", dir, err
	}
	defer provider.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	tag, err = provider.BuildImage(ctx, &testcontainers.ContainerRequest{
		FromDockerfile: testcontainers.FromDockerfile{
			Context:   dir,
			Repo:      imageRepo,
			Tag:       fmt.Sprintf("%d", time.Now().UnixNano()),
			KeepImage: true,
		},
	})
	return tag, dir, err
}

func removeImage(tag string) {
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	cli, err := testcontainers.NewDockerClientWithOpts(ctx)
	if err != nil {
		fmt.Fprintf(os.Stderr, "fleet: remove image %s: %v\n", tag, err)
		return
	}
	defer cli.Close()
	if _, err := cli.ImageRemove(ctx, tag, client.ImageRemoveOptions{Force: true, PruneChildren: true}); err != nil {
		fmt.Fprintf(os.Stderr, "fleet: remove image %s: %v\n", tag, err)
	}
}
