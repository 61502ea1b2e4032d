package kernels

import (
	"cmp"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"syscall"
	"time"
)

// defaultClient bounds connecting and waiting for headers but not the body:
// a kernel package is 100 MB and mirrors differ in speed.
var defaultClient = &http.Client{
	Transport: &http.Transport{
		Proxy:                 http.ProxyFromEnvironment,
		DialContext:           (&net.Dialer{Timeout: 15 * time.Second, KeepAlive: 30 * time.Second}).DialContext,
		TLSHandshakeTimeout:   15 * time.Second,
		ResponseHeaderTimeout: 30 * time.Second,
		IdleConnTimeout:       90 * time.Second,
		MaxIdleConnsPerHost:   4,
	},
}

// maxDownload bounds a download whose size is not known in advance.
const maxDownload = 2 << 30

// errHTTPNotFound marks a 404; callers turn it into an ErrNotFound that
// says what was missing.
var errHTTPNotFound = errors.New("404 not found")

// fetcher performs the HTTP requests of one Resolve.
type fetcher struct {
	client *http.Client
	log    *slog.Logger
	// fix says how to point the source elsewhere when the server cannot
	// be reached; "" means Debian's mirror: key.
	fix string
}

// get starts a GET of url. Transport failures and 5xx wrap ErrUnreachable,
// a 404 wraps errHTTPNotFound.
func (f *fetcher) get(ctx context.Context, url string) (*http.Response, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return nil, fmt.Errorf("fetch %s: %w", url, err)
	}
	resp, err := f.client.Do(req)
	if err != nil {
		if ctx.Err() != nil {
			return nil, fmt.Errorf("fetch %s: %w", url, ctx.Err())
		}
		if errors.Is(err, ErrNotCached) {
			return nil, fmt.Errorf("fetch %s: %w", url, ErrNotCached)
		}
		return nil, fmt.Errorf("fetch %s: %w (%v); check the network or %s", url, ErrUnreachable, err, cmp.Or(f.fix, "set mirror: in matrix.yaml"))
	}
	switch {
	case resp.StatusCode == http.StatusOK:
		return resp, nil
	case resp.StatusCode == http.StatusNotFound:
		resp.Body.Close()
		return nil, fmt.Errorf("fetch %s: %w", url, errHTTPNotFound)
	case resp.StatusCode >= 500:
		resp.Body.Close()
		return nil, fmt.Errorf("fetch %s: %w (%s)", url, ErrUnreachable, resp.Status)
	default:
		resp.Body.Close()
		return nil, fmt.Errorf("fetch %s: %s", url, resp.Status)
	}
}

// readBody reads a whole response of at most limit bytes.
func (f *fetcher) readAll(ctx context.Context, url string, limit int64) ([]byte, error) {
	resp, err := f.get(ctx, url)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	data, err := io.ReadAll(io.LimitReader(resp.Body, limit+1))
	if err != nil {
		return nil, f.bodyError(ctx, url, err)
	}
	if int64(len(data)) > limit {
		return nil, fmt.Errorf("fetch %s: larger than %d bytes", url, limit)
	}
	return data, nil
}

// bodyError classifies an error while reading a response body.
func (f *fetcher) bodyError(ctx context.Context, url string, err error) error {
	if ctx.Err() != nil {
		return fmt.Errorf("fetch %s: %w", url, ctx.Err())
	}
	return fmt.Errorf("fetch %s: %w (%v)", url, ErrUnreachable, err)
}

// download stores url at final, a content-addressed path, if and only if
// it has the expected size and SHA-256. The body goes to a temporary file
// next to final, renamed into place once verified; on any failure the
// temporary file is removed. The caller holds the lock guarding final.
// A wantSize below zero means unknown: the SHA-256 alone vouches for the
// body, bounded by maxDownload.
func (f *fetcher) download(ctx context.Context, url, final, wantSHA string, wantSize int64) error {
	removeStaleTemps(final)
	start := time.Now()
	resp, err := f.get(ctx, url)
	if err != nil {
		return err
	}
	defer resp.Body.Close()

	tmp, err := os.CreateTemp(filepath.Dir(final), filepath.Base(tempPrefix(final))+"*")
	if err != nil {
		return fmt.Errorf("download %s: %w", url, err)
	}
	defer os.Remove(tmp.Name()) // no-op after the rename
	h := sha256.New()
	limit := wantSize
	if limit < 0 {
		limit = maxDownload
	}
	// A failed write (a full disk) is the cache's problem, not the mirror's.
	file := &recordingWriter{w: tmp}
	n, err := io.Copy(io.MultiWriter(file, h), io.LimitReader(resp.Body, limit+1))
	if cerr := tmp.Close(); cerr != nil && file.err == nil {
		file.err = cerr
	}
	if file.err != nil {
		return cacheWriteError(url, final, file.err)
	}
	if err != nil {
		return f.bodyError(ctx, url, err)
	}
	if wantSize < 0 && n > limit {
		return fmt.Errorf("download %s: larger than %d bytes", url, limit)
	}
	if wantSize >= 0 && n != wantSize {
		return fmt.Errorf("download %s: %w: got %d bytes, index says %d", url, ErrChecksum, n, wantSize)
	}
	if got := hex.EncodeToString(h.Sum(nil)); got != wantSHA {
		return fmt.Errorf("download %s: %w: sha256 %s, index says %s", url, ErrChecksum, got, wantSHA)
	}
	if err := os.Rename(tmp.Name(), final); err != nil {
		return fmt.Errorf("download %s: %w", url, err)
	}
	d := time.Since(start)
	f.log.Info("downloaded", "url", url, "bytes", n, "duration", d.Round(time.Millisecond),
		"MB/s", fmt.Sprintf("%.1f", float64(n)/1e6/max(d.Seconds(), 1e-3)))
	return nil
}

// recordingWriter remembers the first error of its writer.
type recordingWriter struct {
	w   io.Writer
	err error
}

func (r *recordingWriter) Write(p []byte) (int, error) {
	n, err := r.w.Write(p)
	if err != nil && r.err == nil {
		r.err = err
	}
	return n, err
}

// cacheWriteError says that a download could not be stored, and how to
// make room when the disk is full.
func cacheWriteError(url, final string, err error) error {
	if errors.Is(err, syscall.ENOSPC) || errors.Is(err, syscall.EDQUOT) {
		return fmt.Errorf("download %s: write to the cache: %w (%s needs room: free some, e.g. vmrunner kernels prune, or set VMRUNNER_CACHE)", url, err, filepath.Dir(filepath.Dir(filepath.Dir(final))))
	}
	return fmt.Errorf("download %s: write to the cache: %w", url, err)
}
