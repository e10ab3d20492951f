// Command estargz-verify opens an eStargz blob with the reference library
// (github.com/containerd/stargz-snapshotter/estargz, Debian's
// golang-github-containerd-stargz-snapshotter-dev), verifies the TOC digest against the
// expected one (the layer's containerd.io/snapshot/stargz/toc.digest annotation) and every chunk
// digest the way the stargz snapshotter does, and prints what it read as one JSON document.
//
// Usage: estargz-verify -blob FILE -toc-digest sha256:HEX
//
// Built by the tests in GOPATH mode: GO111MODULE=off GOPATH=<tmp>:/usr/share/gocode go build.
package main

import (
	"compress/gzip"
	"crypto/sha256"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"os"
	"path"
	"sort"

	"github.com/containerd/stargz-snapshotter/estargz"
	digest "github.com/opencontainers/go-digest"
)

type file struct {
	Type     string            `json:"type"`
	Size     int64             `json:"size"`
	Mode     int64             `json:"mode"`
	UID      int               `json:"uid"`
	GID      int               `json:"gid"`
	LinkName string            `json:"linkName,omitempty"`
	Source   string            `json:"source,omitempty"`
	Sha256   string            `json:"sha256,omitempty"`
	Xattrs   map[string]string `json:"xattrs,omitempty"`
	DevMajor int               `json:"devMajor,omitempty"`
	DevMinor int               `json:"devMinor,omitempty"`
	NumLink  int               `json:"numLink"`
}

type report struct {
	TOCDigest        string             `json:"tocDigest"`
	TOCOffset        int64              `json:"tocOffset"`
	DiffID           string             `json:"diffId"`
	UncompressedSize int64              `json:"uncompressedSize"`
	ChunksVerified   int                `json:"chunksVerified"`
	TOCOrder         []string           `json:"tocOrder"`
	ChunkSizes       map[string][]int64 `json:"chunkSizes"`
	Files            map[string]file    `json:"files"`
}

func main() {
	blob := flag.String("blob", "", "eStargz blob file")
	want := flag.String("toc-digest", "", "expected TOC digest")
	flag.Parse()
	if err := run(*blob, *want); err != nil {
		fmt.Fprintln(os.Stderr, "estargz-verify:", err)
		os.Exit(1)
	}
}

func run(blobPath, wantTOC string) error {
	f, err := os.Open(blobPath)
	if err != nil {
		return err
	}
	defer f.Close()
	st, err := f.Stat()
	if err != nil {
		return err
	}
	sr := io.NewSectionReader(f, 0, st.Size())
	r, err := estargz.Open(sr)
	if err != nil {
		return fmt.Errorf("open: %w", err)
	}
	tocDigest, err := digest.Parse(wantTOC)
	if err != nil {
		return err
	}
	verifier, err := r.VerifyTOC(tocDigest)
	if err != nil {
		return fmt.Errorf("verify TOC: %w", err)
	}
	rep := report{
		TOCDigest:  r.TOCDigest().String(),
		Files:      map[string]file{},
		ChunkSizes: map[string][]int64{},
	}

	// The TOC in its written order (the Reader keeps only a tree).
	tocOffset, footerSize, err := estargz.OpenFooter(sr)
	if err != nil {
		return fmt.Errorf("footer: %w", err)
	}
	rep.TOCOffset = tocOffset
	toc, _, err := new(estargz.GzipDecompressor).ParseTOC(io.NewSectionReader(sr, tocOffset, st.Size()-tocOffset-footerSize))
	if err != nil {
		return fmt.Errorf("parse TOC: %w", err)
	}
	for _, e := range toc.Entries {
		if e.Type != "chunk" {
			rep.TOCOrder = append(rep.TOCOrder, e.Name)
		}
	}

	root, ok := r.Lookup("")
	if !ok {
		return fmt.Errorf("no root directory")
	}
	if err := walk(r, verifier, "", root, &rep); err != nil {
		return err
	}

	// The diff ID: sha256 of the whole blob decompressed (gzip members back to back).
	if _, err := f.Seek(0, io.SeekStart); err != nil {
		return err
	}
	zr, err := gzip.NewReader(f)
	if err != nil {
		return err
	}
	h := sha256.New()
	n, err := io.Copy(h, zr)
	if err != nil {
		return fmt.Errorf("decompress: %w", err)
	}
	rep.DiffID = fmt.Sprintf("sha256:%x", h.Sum(nil))
	rep.UncompressedSize = n
	return json.NewEncoder(os.Stdout).Encode(rep)
}

func walk(r *estargz.Reader, v estargz.TOCEntryVerifier, dir string, e *estargz.TOCEntry, rep *report) error {
	var names []string
	children := map[string]*estargz.TOCEntry{}
	e.ForeachChild(func(base string, ent *estargz.TOCEntry) bool {
		names = append(names, base)
		children[base] = ent
		return true
	})
	sort.Strings(names)
	for _, base := range names {
		ent := children[base]
		p := path.Join(dir, base)
		out := file{Type: ent.Type, Size: ent.Size, Mode: ent.Mode, UID: ent.UID, GID: ent.GID,
			LinkName: ent.LinkName, DevMajor: ent.DevMajor, DevMinor: ent.DevMinor, NumLink: ent.NumLink}
		if ent.Name != p {
			out.Source = ent.Name // a hard link: the tree holds its target's entry
		}
		if len(ent.Xattrs) > 0 {
			out.Xattrs = map[string]string{}
			for k, val := range ent.Xattrs {
				out.Xattrs[k] = string(val)
			}
		}
		if ent.Type == "reg" {
			sum, chunks, err := verifyFile(r, v, ent.Name, ent.Size)
			if err != nil {
				return fmt.Errorf("%s: %w", p, err)
			}
			out.Sha256 = sum
			rep.ChunksVerified += len(chunks)
			if ent.Name == p {
				rep.ChunkSizes[p] = chunks
			}
		}
		rep.Files[p] = out
		if ent.Type == "dir" {
			if err := walk(r, v, p, ent, rep); err != nil {
				return err
			}
		}
	}
	return nil
}

// verifyFile checks every chunk of a file against its TOC chunk digest, reading it through the
// Reader (which decompresses from the chunk's TOC offset), as the snapshotter does on a fetch.
func verifyFile(r *estargz.Reader, v estargz.TOCEntryVerifier, name string, size int64) (string, []int64, error) {
	fr, err := r.OpenFile(name)
	if err != nil {
		return "", nil, err
	}
	var chunks []int64
	whole := sha256.New()
	for off := int64(0); off < size; {
		ce, ok := r.ChunkEntryForOffset(name, off)
		if !ok {
			return "", nil, fmt.Errorf("no chunk at offset %d", off)
		}
		if ce.ChunkOffset != off || ce.ChunkSize <= 0 {
			return "", nil, fmt.Errorf("chunk at %d has offset %d size %d", off, ce.ChunkOffset, ce.ChunkSize)
		}
		dv, err := v.Verifier(ce)
		if err != nil {
			return "", nil, err
		}
		if _, err := io.Copy(io.MultiWriter(dv, whole), io.NewSectionReader(fr, ce.ChunkOffset, ce.ChunkSize)); err != nil {
			return "", nil, fmt.Errorf("read chunk at %d: %w", off, err)
		}
		if !dv.Verified() {
			return "", nil, fmt.Errorf("chunk at %d does not match its digest", off)
		}
		chunks = append(chunks, ce.ChunkSize)
		off += ce.ChunkSize
	}
	return fmt.Sprintf("sha256:%x", whole.Sum(nil)), chunks, nil
}
