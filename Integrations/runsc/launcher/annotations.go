package main

import (
	"fmt"
	"path/filepath"
	"regexp"
	"sort"
	"strconv"
	"strings"
)

// OCI annotation keys understood by the launcher. They live in the bundle's
// config.json "annotations" object, next to gVisor's own dev.gvisor.* keys.
const (
	annotationPrefix      = "dev.sealgofer."
	annotationBinary      = annotationPrefix + "binary"
	annotationLog         = annotationPrefix + "log"
	annotationLogLevel    = annotationPrefix + "log-level"
	annotationMountPrefix = annotationPrefix + "mount."

	// Per-mount fields: dev.sealgofer.mount.<destination>.<field>.
	fieldStore          = "store"
	fieldKeyFile        = "key-file"
	fieldPassphraseFile = "passphrase-file"
	fieldScratch        = "scratch"
	fieldPassthrough    = "passthrough"
	fieldReadonly       = "readonly"
	fieldDonate         = "donate"
	fieldScratchLimit   = "scratch-limit"
)

// logLevels are swift-log's level names, which `sealgofer serve --log-level` takes.
var logLevels = map[string]bool{
	"trace": true, "debug": true, "info": true, "notice": true,
	"warning": true, "error": true, "critical": true,
}

// mountSettings is what the annotations ask of sealgofer for one mount.
type mountSettings struct {
	Destination string // cleaned absolute mount destination inside the sandbox
	Store       string // sealed store directory on the host
	KeyFile     string // key file on the host
	// PassphraseFile holds the store's passphrase (instead of a key file).
	PassphraseFile string
	Scratch        string // scratch directory on the host (plaintext working space)
	Passthrough    string // host directory served unencrypted (testing, migration)
	Readonly       bool
	// Donate is passed as --donate when set: "all" or "read-only" (durable fsync).
	Donate string
	// ScratchLimit is passed as --scratch-limit when set (e.g. "4G"); sealgofer parses it.
	ScratchLimit string
}

// sealgoferSettings is the whole parsed annotation set of one container.
type sealgoferSettings struct {
	Binary string // sealgofer executable; empty means the build-time default
	Log    string // host file that receives sealgofer's stdout and stderr; empty: inherit
	// LogLevel is passed as --log-level when set (swift-log level names).
	LogLevel string
	Mounts   []mountSettings
}

// parseAnnotations extracts the dev.sealgofer.* keys. Unknown keys under
// that prefix are errors rather than ignored, so that a typo (say
// ".keyfile") cannot silently leave a mount to the stock, unencrypted gofer.
func parseAnnotations(annotations map[string]string) (sealgoferSettings, error) {
	var s sealgoferSettings
	byDestination := map[string]*mountSettings{}
	for key, value := range annotations {
		if !strings.HasPrefix(key, annotationPrefix) {
			continue
		}
		switch {
		case key == annotationBinary:
			if !filepath.IsAbs(value) {
				return s, fmt.Errorf("%s must be an absolute path, got %q", key, value)
			}
			s.Binary = filepath.Clean(value)
		case key == annotationLog:
			if !filepath.IsAbs(value) {
				return s, fmt.Errorf("%s must be an absolute path, got %q", key, value)
			}
			s.Log = filepath.Clean(value)
		case key == annotationLogLevel:
			if !logLevels[value] {
				return s, fmt.Errorf("%s: unknown level %q (trace, debug, info, notice, warning, error, critical)", key, value)
			}
			s.LogLevel = value
		case strings.HasPrefix(key, annotationMountPrefix):
			if err := applyMountAnnotation(byDestination, key, value); err != nil {
				return s, err
			}
		default:
			return s, fmt.Errorf("unknown annotation %q", key)
		}
	}
	for _, m := range byDestination {
		if err := m.validate(); err != nil {
			return s, err
		}
		s.Mounts = append(s.Mounts, *m)
	}
	// Map iteration order is random; keep the result deterministic.
	sort.Slice(s.Mounts, func(i, j int) bool { return s.Mounts[i].Destination < s.Mounts[j].Destination })
	return s, nil
}

// applyMountAnnotation handles one dev.sealgofer.mount.<destination>.<field>
// key. The field is split at the last dot because field names contain none
// while destinations may ("/data.v2").
func applyMountAnnotation(byDestination map[string]*mountSettings, key, value string) error {
	rest := strings.TrimPrefix(key, annotationMountPrefix)
	dot := strings.LastIndexByte(rest, '.')
	if dot <= 0 {
		return fmt.Errorf("annotation %q: want %s<destination>.<field>", key, annotationMountPrefix)
	}
	destination, field := rest[:dot], rest[dot+1:]
	if !filepath.IsAbs(destination) {
		return fmt.Errorf("annotation %q: mount destination %q is not absolute", key, destination)
	}
	destination = filepath.Clean(destination)
	if destination == "/" {
		return fmt.Errorf("annotation %q: the root mount cannot be assigned to sealgofer (yet)", key)
	}
	m := byDestination[destination]
	if m == nil {
		m = &mountSettings{Destination: destination}
		byDestination[destination] = m
	}
	switch field {
	case fieldStore:
		return setPath(&m.Store, key, value)
	case fieldKeyFile:
		return setPath(&m.KeyFile, key, value)
	case fieldPassphraseFile:
		return setPath(&m.PassphraseFile, key, value)
	case fieldScratch:
		return setPath(&m.Scratch, key, value)
	case fieldPassthrough:
		return setPath(&m.Passthrough, key, value)
	case fieldReadonly:
		ro, err := strconv.ParseBool(value)
		if err != nil {
			return fmt.Errorf("annotation %q: want true or false, got %q", key, value)
		}
		m.Readonly = ro
		return nil
	case fieldDonate:
		if value != "all" && value != "read-only" {
			return fmt.Errorf("annotation %q: want all or read-only, got %q", key, value)
		}
		m.Donate = value
		return nil
	case fieldScratchLimit:
		if !validByteSize(value) {
			return fmt.Errorf("annotation %q: want a size such as 512M or 4G, got %q", key, value)
		}
		m.ScratchLimit = value
		return nil
	default:
		return fmt.Errorf("annotation %q: unknown field %q (known: %s, %s, %s, %s, %s, %s, %s, %s)",
			key, field, fieldStore, fieldKeyFile, fieldPassphraseFile, fieldScratch, fieldPassthrough, fieldReadonly, fieldDonate, fieldScratchLimit)
	}
}

// byteSizePattern is the shape `sealgofer serve --scratch-limit` takes: 4096,
// 512M, 1.5G, 2GiB (binary units). The launcher only screens the shape so that
// a typo fails here, at create time, naming the annotation; sealgofer parses it.
var byteSizePattern = regexp.MustCompile(`^[0-9]+(\.[0-9]+)?([KMGTkmgt](i?[Bb])?|[Bb])?$`)

func validByteSize(v string) bool { return byteSizePattern.MatchString(v) }

func setPath(dst *string, key, value string) error {
	if !filepath.IsAbs(value) {
		return fmt.Errorf("annotation %q must be an absolute host path, got %q", key, value)
	}
	*dst = filepath.Clean(value)
	return nil
}

// validate checks that a mount names exactly one backing: a sealed store or
// a passthrough directory. Deeper checks (does the store exist, is the key
// right) belong to sealgofer itself.
func (m *mountSettings) validate() error {
	switch {
	case m.Store == "" && m.Passthrough == "":
		return fmt.Errorf("sealgofer mount %q: needs %s or %s", m.Destination, fieldStore, fieldPassthrough)
	case m.Store != "" && m.Passthrough != "":
		return fmt.Errorf("sealgofer mount %q: %s and %s are exclusive", m.Destination, fieldStore, fieldPassthrough)
	case m.Passthrough != "" && m.KeyFile != "":
		return fmt.Errorf("sealgofer mount %q: %s makes no sense with %s", m.Destination, fieldKeyFile, fieldPassthrough)
	case m.Passthrough != "" && m.PassphraseFile != "":
		return fmt.Errorf("sealgofer mount %q: %s makes no sense with %s", m.Destination, fieldPassphraseFile, fieldPassthrough)
	case m.KeyFile != "" && m.PassphraseFile != "":
		return fmt.Errorf("sealgofer mount %q: %s and %s are exclusive", m.Destination, fieldKeyFile, fieldPassphraseFile)
	}
	return nil
}

// serveArgs is the argument vector (after the binary) for `sealgofer serve`
// serving this mount on file descriptor fd. Options appear only when set, so
// a server that lacks one (say --scratch) fails only for mounts that ask for it.
func (m *mountSettings) serveArgs(fd int, readonly bool, logLevel string) []string {
	args := []string{"serve", "--fd", strconv.Itoa(fd)}
	if m.Store != "" {
		args = append(args, "--store", m.Store)
	}
	if m.KeyFile != "" {
		args = append(args, "--key-file", m.KeyFile)
	}
	if m.PassphraseFile != "" {
		args = append(args, "--passphrase-file", m.PassphraseFile)
	}
	if m.Scratch != "" {
		args = append(args, "--scratch", m.Scratch)
	}
	if m.Passthrough != "" {
		args = append(args, "--passthrough", m.Passthrough)
	}
	if readonly {
		args = append(args, "--readonly")
	}
	if m.Donate != "" {
		args = append(args, "--donate", m.Donate)
	}
	if m.ScratchLimit != "" {
		args = append(args, "--scratch-limit", m.ScratchLimit)
	}
	if logLevel != "" {
		args = append(args, "--log-level", logLevel)
	}
	return args
}
