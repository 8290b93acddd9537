package main

import (
	"reflect"
	"strings"
	"testing"
)

func TestParseAnnotationsFullSet(t *testing.T) {
	s, err := parseAnnotations(map[string]string{
		"dev.sealgofer.binary":                      "/opt/sealgofer/bin/sealgofer",
		"dev.sealgofer.log":                         "/var/log/sealgofer.log",
		"dev.sealgofer.log-level":                   "debug",
		"dev.sealgofer.mount./data.store":           "/srv/stores/data",
		"dev.sealgofer.mount./data.key-file":        "/etc/sealgofer/data.key",
		"dev.sealgofer.mount./data.scratch":         "/run/sealgofer/scratch",
		"dev.sealgofer.mount./data.readonly":        "true",
		"dev.sealgofer.mount./data.donate":          "read-only",
		"dev.sealgofer.mount./data.scratch-limit":   "4G",
		"dev.sealgofer.mount./srv/v1.2.passthrough": "/tmp/plain/",
		"dev.gvisor.flag.debug":                     "true", // not ours: ignored
		"org.opencontainers.image.title":            "x",    // not ours: ignored
	})
	if err != nil {
		t.Fatal(err)
	}
	want := sealgoferSettings{
		Binary:   "/opt/sealgofer/bin/sealgofer",
		Log:      "/var/log/sealgofer.log",
		LogLevel: "debug",
		Mounts: []mountSettings{
			{Destination: "/data", Store: "/srv/stores/data", KeyFile: "/etc/sealgofer/data.key", Scratch: "/run/sealgofer/scratch", Readonly: true, Donate: "read-only", ScratchLimit: "4G"},
			// The destination contains a dot: the field is split off at the last one.
			{Destination: "/srv/v1.2", Passthrough: "/tmp/plain"},
		},
	}
	if !reflect.DeepEqual(s, want) {
		t.Fatalf("got  %+v\nwant %+v", s, want)
	}
}

func TestParseAnnotationsNoneOfOurs(t *testing.T) {
	s, err := parseAnnotations(map[string]string{"dev.gvisor.flag.debug": "true"})
	if err != nil || len(s.Mounts) != 0 || s.Binary != "" {
		t.Fatalf("got %+v, %v", s, err)
	}
}

func TestParseAnnotationsDestinationIsCleaned(t *testing.T) {
	s, err := parseAnnotations(map[string]string{"dev.sealgofer.mount./data/./x/.passthrough": "/p"})
	if err != nil || len(s.Mounts) != 1 || s.Mounts[0].Destination != "/data/x" {
		t.Fatalf("got %+v, %v", s, err)
	}
}

func TestParseAnnotationsRejects(t *testing.T) {
	cases := map[string]struct {
		annotations map[string]string
		wantInError string
	}{
		"typo in field":               {map[string]string{"dev.sealgofer.mount./data.keyfile": "/k", "dev.sealgofer.mount./data.store": "/s"}, "unknown field"},
		"unknown top-level key":       {map[string]string{"dev.sealgofer.binray": "/b"}, "unknown annotation"},
		"relative destination":        {map[string]string{"dev.sealgofer.mount.data.store": "/s"}, "not absolute"},
		"missing field":               {map[string]string{"dev.sealgofer.mount./data": "/s"}, "<destination>.<field>"},
		"root mount":                  {map[string]string{"dev.sealgofer.mount./.store": "/s"}, "root mount"},
		"relative store":              {map[string]string{"dev.sealgofer.mount./data.store": "stores/data"}, "absolute host path"},
		"unknown log level":           {map[string]string{"dev.sealgofer.log-level": "verbose"}, "unknown level"},
		"relative binary":             {map[string]string{"dev.sealgofer.binary": "sealgofer"}, "absolute path"},
		"bad readonly":                {map[string]string{"dev.sealgofer.mount./data.store": "/s", "dev.sealgofer.mount./data.readonly": "yes please"}, "true or false"},
		"bad donate":                  {map[string]string{"dev.sealgofer.mount./data.store": "/s", "dev.sealgofer.mount./data.donate": "some"}, "all or read-only"},
		"bad scratch limit":           {map[string]string{"dev.sealgofer.mount./data.store": "/s", "dev.sealgofer.mount./data.scratch-limit": "lots"}, "size such as"},
		"no backing":                  {map[string]string{"dev.sealgofer.mount./data.key-file": "/k"}, "needs store or passthrough"},
		"two backings":                {map[string]string{"dev.sealgofer.mount./data.store": "/s", "dev.sealgofer.mount./data.passthrough": "/p"}, "exclusive"},
		"key with passthrough":        {map[string]string{"dev.sealgofer.mount./data.passthrough": "/p", "dev.sealgofer.mount./data.key-file": "/k"}, "makes no sense"},
		"passphrase with passthrough": {map[string]string{"dev.sealgofer.mount./data.passthrough": "/p", "dev.sealgofer.mount./data.passphrase-file": "/f"}, "makes no sense"},
		"key and passphrase":          {map[string]string{"dev.sealgofer.mount./data.store": "/s", "dev.sealgofer.mount./data.key-file": "/k", "dev.sealgofer.mount./data.passphrase-file": "/f"}, "exclusive"},
	}
	for name, c := range cases {
		_, err := parseAnnotations(c.annotations)
		if err == nil || !strings.Contains(err.Error(), c.wantInError) {
			t.Errorf("%s: got error %v, want one containing %q", name, err, c.wantInError)
		}
	}
}

func TestServeArgs(t *testing.T) {
	sealed := mountSettings{Destination: "/data", Store: "/s", KeyFile: "/k", Scratch: "/t"}
	if got, want := sealed.serveArgs(3, true, "info"), []string{"serve", "--fd", "3", "--store", "/s", "--key-file", "/k", "--scratch", "/t", "--readonly", "--log-level", "info"}; !reflect.DeepEqual(got, want) {
		t.Errorf("sealed: got %q, want %q", got, want)
	}
	durable := mountSettings{Destination: "/data", Store: "/s", KeyFile: "/k", Donate: "read-only", ScratchLimit: "2G"}
	if got, want := durable.serveArgs(3, false, ""), []string{"serve", "--fd", "3", "--store", "/s", "--key-file", "/k", "--donate", "read-only", "--scratch-limit", "2G"}; !reflect.DeepEqual(got, want) {
		t.Errorf("donate: got %q, want %q", got, want)
	}
	byPassphrase := mountSettings{Destination: "/data", Store: "/s", PassphraseFile: "/f"}
	if got, want := byPassphrase.serveArgs(3, false, ""), []string{"serve", "--fd", "3", "--store", "/s", "--passphrase-file", "/f"}; !reflect.DeepEqual(got, want) {
		t.Errorf("passphrase: got %q, want %q", got, want)
	}
	plain := mountSettings{Destination: "/data", Passthrough: "/p"}
	if got, want := plain.serveArgs(3, false, ""), []string{"serve", "--fd", "3", "--passthrough", "/p"}; !reflect.DeepEqual(got, want) {
		t.Errorf("passthrough: got %q, want %q", got, want)
	}
}
