package main

import (
	"os"
	"reflect"
	"strings"
	"testing"

	specs "github.com/opencontainers/runtime-spec/specs-go"
)

// A spec in the shape runsc sees: non-gofer mounts (proc, tmpfs) mixed with
// bind mounts, one of them spelled as type "none" with an rbind option, which
// runsc also counts as gofer-backed.
func testSpec() *specs.Spec {
	return &specs.Spec{Mounts: []specs.Mount{
		{Destination: "/proc", Type: "proc", Source: "proc"},
		{Destination: "/etc/hosts", Type: "bind", Source: "/tmp/hosts", Options: []string{"rbind", "ro"}},
		{Destination: "/dev", Type: "tmpfs", Source: "tmpfs"},
		{Destination: "/data", Type: "none", Source: "/srv/decoy", Options: []string{"rbind", "rw"}},
		{Destination: "/cache", Type: "bind", Source: "/srv/cache"},
		{Destination: "/ro", Type: "bind", Source: "/srv/ro", Options: []string{"bind", "ro"}},
	}}
}

func settingsFor(mounts ...mountSettings) sealgoferSettings { return sealgoferSettings{Mounts: mounts} }

func TestPlanPairsMountsWithTheirIOFDs(t *testing.T) {
	// io fds: root=10, /etc/hosts=11, /data=12, /cache=13, /ro=14.
	ioFDs := []int{10, 11, 12, 13, 14}
	data := mountSettings{Destination: "/data", Store: "/s"}
	ro := mountSettings{Destination: "/ro", Passthrough: "/p"}
	plan, err := planHandovers(testSpec(), ioFDs, settingsFor(data, ro))
	if err != nil {
		t.Fatal(err)
	}
	want := []handover{
		{Mount: data, IOFD: 12, Readonly: false},
		{Mount: ro, IOFD: 14, Readonly: true}, // "ro" in the OCI options
	}
	if !reflect.DeepEqual(plan, want) {
		t.Fatalf("got  %+v\nwant %+v", plan, want)
	}
}

func TestPlanReadonlyAnnotation(t *testing.T) {
	cache := mountSettings{Destination: "/cache", Store: "/s", Readonly: true}
	plan, err := planHandovers(testSpec(), []int{10, 11, 12, 13, 14}, settingsFor(cache))
	if err != nil || len(plan) != 1 || plan[0].IOFD != 13 || !plan[0].Readonly {
		t.Fatalf("got %+v, %v", plan, err)
	}
}

func TestPlanRejects(t *testing.T) {
	cases := map[string]struct {
		ioFDs       []int
		mount       mountSettings
		wantInError string
	}{
		"destination not in spec": {[]int{10, 11, 12, 13, 14}, mountSettings{Destination: "/nope", Store: "/s"}, "no mount with this destination"},
		"not gofer-backed":        {[]int{10, 11, 12, 13, 14}, mountSettings{Destination: "/dev", Store: "/s"}, "not a gofer-backed bind mount"},
		"too few io fds":          {[]int{10, 11, 12}, mountSettings{Destination: "/data", Store: "/s"}, "more gofer mounts than --io-fds"},
		"too many io fds":         {[]int{10, 11, 12, 13, 14, 15}, mountSettings{Destination: "/data", Store: "/s"}, "--io-fds has 6"},
	}
	for name, c := range cases {
		_, err := planHandovers(testSpec(), c.ioFDs, settingsFor(c.mount))
		if err == nil || !strings.Contains(err.Error(), c.wantInError) {
			t.Errorf("%s: got error %v, want one containing %q", name, err, c.wantInError)
		}
	}
}

func TestPlanRejectsDuplicateDestination(t *testing.T) {
	spec := testSpec()
	spec.Mounts = append(spec.Mounts, specs.Mount{Destination: "/data/", Type: "bind", Source: "/srv/other"})
	_, err := planHandovers(spec, []int{10, 11, 12, 13, 14, 15}, settingsFor(mountSettings{Destination: "/data", Store: "/s"}))
	if err == nil || !strings.Contains(err.Error(), "several spec mounts") {
		t.Fatalf("got %v", err)
	}
}

func TestCheckSpec(t *testing.T) {
	spec := testSpec()
	spec.Annotations = map[string]string{
		"dev.sealgofer.binary":                  "/bin/sh", // any executable will do
		"dev.sealgofer.mount./data.passthrough": "/p",
	}
	if err := checkSpec(spec); err != nil {
		t.Fatalf("good spec: %v", err)
	}
	plainFile := t.TempDir() + "/not-executable"
	if err := os.WriteFile(plainFile, []byte("x"), 0o644); err != nil {
		t.Fatal(err)
	}
	spec.Annotations["dev.sealgofer.binary"] = plainFile
	if err := checkSpec(spec); err == nil || !strings.Contains(err.Error(), "not an executable") {
		t.Fatalf("non-executable binary: %v", err)
	}
	spec.Annotations["dev.sealgofer.binary"] = "/bin/sh"
	spec.Annotations["dev.sealgofer.mount./dev.passthrough"] = "/p"
	if err := checkSpec(spec); err == nil || !strings.Contains(err.Error(), "not a gofer-backed") {
		t.Fatalf("tmpfs destination: %v", err)
	}
}
