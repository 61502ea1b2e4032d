// Command sbom writes an SPDX 2.3 JSON software bill of materials for Go
// binaries, from the module information each binary carries
// (debug/buildinfo): the main module, every dependency module compiled in
// (a replaced module as its replacement) and the Go toolchain. It is what
// scripts/release.sh runs for vmrunner.spdx.json:
//
//	go run ./internal/release/sbom -name vmrunner -version v1.2.3 BINARY...
//
// The creation time is $SOURCE_DATE_EPOCH when set, so that a rebuild
// writes the same file.
package main

import (
	"cmp"
	"debug/buildinfo"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"os"
	"regexp"
	"slices"
	"strconv"
	"time"
)

func main() {
	name := flag.String("name", "vmrunner", "the document's name")
	version := flag.String("version", "dev", "the release's version")
	flag.Parse()
	if err := run(os.Stdout, *name, *version, flag.Args(), created()); err != nil {
		fmt.Fprintln(os.Stderr, "sbom:", err)
		os.Exit(1)
	}
}

func created() time.Time {
	if s := os.Getenv("SOURCE_DATE_EPOCH"); s != "" {
		if n, err := strconv.ParseInt(s, 10, 64); err == nil {
			return time.Unix(n, 0).UTC()
		}
	}
	return time.Now().UTC()
}

type document struct {
	SPDXVersion       string         `json:"spdxVersion"`
	DataLicense       string         `json:"dataLicense"`
	SPDXID            string         `json:"SPDXID"`
	Name              string         `json:"name"`
	DocumentNamespace string         `json:"documentNamespace"`
	CreationInfo      creationInfo   `json:"creationInfo"`
	Packages          []pkg          `json:"packages"`
	Relationships     []relationship `json:"relationships"`
}

type creationInfo struct {
	Created  string   `json:"created"`
	Creators []string `json:"creators"`
}

type pkg struct {
	SPDXID           string   `json:"SPDXID"`
	Name             string   `json:"name"`
	VersionInfo      string   `json:"versionInfo"`
	DownloadLocation string   `json:"downloadLocation"`
	FilesAnalyzed    bool     `json:"filesAnalyzed"`
	ExternalRefs     []extRef `json:"externalRefs,omitempty"`
}

type extRef struct {
	Category string `json:"referenceCategory"`
	Type     string `json:"referenceType"`
	Locator  string `json:"referenceLocator"`
}

type relationship struct {
	Element string `json:"spdxElementId"`
	Type    string `json:"relationshipType"`
	Related string `json:"relatedSpdxElement"`
}

var idUnsafe = regexp.MustCompile(`[^A-Za-z0-9.-]+`)

func run(w io.Writer, name, version string, bins []string, at time.Time) error {
	if len(bins) == 0 {
		return fmt.Errorf("no binaries given")
	}
	type module struct{ path, version string }
	mods := map[module]bool{}
	var main, goVersion string
	for _, b := range bins {
		info, err := buildinfo.ReadFile(b)
		if err != nil {
			return fmt.Errorf("read build info: %w", err)
		}
		main = cmp.Or(main, info.Main.Path)
		goVersion = cmp.Or(goVersion, info.GoVersion)
		for _, d := range info.Deps {
			if d.Replace != nil {
				d = d.Replace
			}
			mods[module{d.Path, d.Version}] = true
		}
	}
	doc := document{SPDXVersion: "SPDX-2.3", DataLicense: "CC0-1.0", SPDXID: "SPDXRef-DOCUMENT", Name: name + "-" + version,
		DocumentNamespace: "https://" + main + "/spdx/" + name + "-" + version,
		CreationInfo:      creationInfo{Created: at.Format(time.RFC3339), Creators: []string{"Tool: " + main + "/internal/release/sbom"}}}
	add := func(path, ver, purl string) string {
		id := "SPDXRef-Package-" + idUnsafe.ReplaceAllString(path+"-"+ver, "-")
		p := pkg{SPDXID: id, Name: path, VersionInfo: ver, DownloadLocation: "NOASSERTION"}
		if purl != "" {
			p.ExternalRefs = []extRef{{"PACKAGE-MANAGER", "purl", purl}}
		}
		doc.Packages = append(doc.Packages, p)
		return id
	}
	root := add(main, version, "pkg:golang/"+main+"@"+version)
	doc.Relationships = append(doc.Relationships, relationship{"SPDXRef-DOCUMENT", "DESCRIBES", root})
	keys := make([]module, 0, len(mods))
	for m := range mods {
		keys = append(keys, m)
	}
	slices.SortFunc(keys, func(a, b module) int { return cmp.Or(cmp.Compare(a.path, b.path), cmp.Compare(a.version, b.version)) })
	for _, m := range keys {
		id := add(m.path, m.version, "pkg:golang/"+m.path+"@"+m.version)
		doc.Relationships = append(doc.Relationships, relationship{root, "DEPENDS_ON", id})
	}
	tool := add("golang.org/toolchain", goVersion, "pkg:golang/golang.org/toolchain@"+goVersion)
	doc.Relationships = append(doc.Relationships, relationship{tool, "BUILD_DEPENDENCY_OF", root})
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	return enc.Encode(doc)
}
