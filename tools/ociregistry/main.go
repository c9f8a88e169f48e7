// Command oci-referrers-registry is the test suite's OCI 1.1 registry with the native
// referrers API (GET /v2/<name>/referrers/<digest>).
//
// It serves go-containerregistry's pkg/registry with referrers support switched on and adds
// the parts of the OCI distribution spec v1.1 that the library leaves out, so clients see what a
// conforming registry says:
//
//   - a manifest PUT that carries a `subject` is answered with an `OCI-Subject` header naming
//     the subject digest (the signal that the registry indexes referrers itself);
//   - each descriptor in a referrers listing has `artifactType` taken from the manifest's
//     `artifactType`, falling back to its config media type;
//   - the `artifactType` query parameter filters the listing, and the answer then carries
//     `OCI-Filters-Applied: artifactType`;
//   - an unknown repository or subject gets an empty index (200), never 404.
//
// Manifests live in memory; blobs live in memory or, with -blob-dir, on disk. The actual
// listening address is printed on stdout ("listening on HOST:PORT") so callers can ask for
// port 0.
package main

import (
	"bytes"
	"encoding/json"
	"flag"
	"fmt"
	"log"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"strings"

	"github.com/google/go-containerregistry/pkg/registry"
)

type descriptor struct {
	MediaType    string            `json:"mediaType"`
	Digest       string            `json:"digest"`
	Size         int64             `json:"size"`
	ArtifactType string            `json:"artifactType,omitempty"`
	Annotations  map[string]string `json:"annotations,omitempty"`
}

type index struct {
	SchemaVersion int          `json:"schemaVersion"`
	MediaType     string       `json:"mediaType"`
	Manifests     []descriptor `json:"manifests"`
}

type manifestHead struct {
	ArtifactType string `json:"artifactType"`
	Config       *struct {
		MediaType string `json:"mediaType"`
	} `json:"config"`
	Subject *struct {
		Digest string `json:"digest"`
	} `json:"subject"`
}

const ociIndex = "application/vnd.oci.image.index.v1+json"

// splitV2 splits "/v2/<name>/<kind>/<ref>" into name, kind and ref.
func splitV2(path string) (name, kind, ref string, ok bool) {
	if !strings.HasPrefix(path, "/v2/") {
		return "", "", "", false
	}
	parts := strings.Split(strings.TrimPrefix(path, "/v2/"), "/")
	if len(parts) < 3 {
		return "", "", "", false
	}
	n := len(parts)
	return strings.Join(parts[:n-2], "/"), parts[n-2], parts[n-1], true
}

type referrersFix struct {
	inner http.Handler
}

func (f referrersFix) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	name, kind, ref, ok := splitV2(r.URL.Path)
	switch {
	case ok && kind == "manifests" && r.Method == http.MethodPut:
		f.putManifest(w, r)
	case ok && kind == "referrers" && r.Method == http.MethodGet:
		f.referrers(w, r, name, ref)
	default:
		f.inner.ServeHTTP(w, r)
	}
}

func (f referrersFix) putManifest(w http.ResponseWriter, r *http.Request) {
	body, err := readAll(r)
	if err != nil {
		http.Error(w, err.Error(), http.StatusBadRequest)
		return
	}
	var head manifestHead
	_ = json.Unmarshal(body, &head)
	r.Body = readCloser{bytes.NewReader(body)}
	r.ContentLength = int64(len(body))
	rec := httptest.NewRecorder()
	f.inner.ServeHTTP(rec, r)
	for k, v := range rec.Header() {
		w.Header()[k] = v
	}
	if head.Subject != nil && head.Subject.Digest != "" && rec.Code < 300 {
		w.Header().Set("OCI-Subject", head.Subject.Digest)
	}
	w.WriteHeader(rec.Code)
	_, _ = w.Write(rec.Body.Bytes())
}

func (f referrersFix) referrers(w http.ResponseWriter, r *http.Request, name, subject string) {
	inner := r.Clone(r.Context())
	inner.URL.RawQuery = ""
	rec := httptest.NewRecorder()
	f.inner.ServeHTTP(rec, inner)
	switch {
	case rec.Code == http.StatusNotFound:
		rec = httptest.NewRecorder()
		rec.Code = http.StatusOK
		_, _ = rec.Body.WriteString(`{"schemaVersion":2,"mediaType":"` + ociIndex + `","manifests":[]}`)
	case rec.Code != http.StatusOK:
		for k, v := range rec.Header() {
			w.Header()[k] = v
		}
		w.WriteHeader(rec.Code)
		_, _ = w.Write(rec.Body.Bytes())
		return
	}
	var idx index
	if err := json.Unmarshal(rec.Body.Bytes(), &idx); err != nil {
		http.Error(w, err.Error(), http.StatusInternalServerError)
		return
	}
	want := r.URL.Query().Get("artifactType")
	out := make([]descriptor, 0, len(idx.Manifests))
	for _, d := range idx.Manifests {
		if at := f.artifactType(r, name, d.Digest); at != "" {
			d.ArtifactType = at
		}
		if want != "" && d.ArtifactType != want {
			continue
		}
		out = append(out, d)
	}
	idx.Manifests = out
	idx.SchemaVersion = 2
	idx.MediaType = ociIndex
	msg, err := json.Marshal(idx)
	if err != nil {
		http.Error(w, err.Error(), http.StatusInternalServerError)
		return
	}
	if want != "" {
		w.Header().Set("OCI-Filters-Applied", "artifactType")
	}
	w.Header().Set("Content-Type", ociIndex)
	w.Header().Set("Content-Length", fmt.Sprint(len(msg)))
	w.WriteHeader(http.StatusOK)
	_, _ = w.Write(msg)
}

// artifactType reads a stored manifest and returns its artifactType, or its config media type.
func (f referrersFix) artifactType(r *http.Request, name, digest string) string {
	req := httptest.NewRequest(http.MethodGet, "/v2/"+name+"/manifests/"+digest, nil)
	req = req.WithContext(r.Context())
	rec := httptest.NewRecorder()
	f.inner.ServeHTTP(rec, req)
	if rec.Code != http.StatusOK {
		return ""
	}
	var head manifestHead
	if json.Unmarshal(rec.Body.Bytes(), &head) != nil {
		return ""
	}
	if head.ArtifactType != "" {
		return head.ArtifactType
	}
	if head.Config != nil {
		return head.Config.MediaType
	}
	return ""
}

type readCloser struct{ *bytes.Reader }

func (readCloser) Close() error { return nil }

func readAll(r *http.Request) ([]byte, error) {
	defer r.Body.Close()
	var buf bytes.Buffer
	_, err := buf.ReadFrom(r.Body)
	return buf.Bytes(), err
}

func main() {
	addr := flag.String("addr", "127.0.0.1:0", "listen address (port 0 picks a free port)")
	certFile := flag.String("tls-cert", "", "PEM server certificate (enables TLS with -tls-key)")
	keyFile := flag.String("tls-key", "", "PEM private key for -tls-cert")
	blobDir := flag.String("blob-dir", "", "store blobs in this directory instead of memory")
	quiet := flag.Bool("quiet", false, "do not log requests")
	flag.Parse()

	if (*certFile == "") != (*keyFile == "") {
		log.Fatal("-tls-cert and -tls-key go together")
	}

	logger := log.New(os.Stderr, "", log.LstdFlags)
	opts := []registry.Option{registry.WithReferrersSupport(true), registry.Logger(logger)}
	if *quiet {
		opts[1] = registry.Logger(log.New(discard{}, "", 0))
	}
	if *blobDir != "" {
		if err := os.MkdirAll(*blobDir, 0o755); err != nil {
			log.Fatal(err)
		}
		opts = append(opts, registry.WithBlobHandler(registry.NewDiskBlobHandler(*blobDir)))
	}
	handler := referrersFix{inner: registry.New(opts...)}

	ln, err := net.Listen("tcp", *addr)
	if err != nil {
		log.Fatal(err)
	}
	fmt.Printf("listening on %s\n", ln.Addr().String())
	os.Stdout.Sync()

	srv := &http.Server{Handler: handler}
	if *certFile != "" {
		err = srv.ServeTLS(ln, *certFile, *keyFile)
	} else {
		err = srv.Serve(ln)
	}
	log.Fatal(err)
}

type discard struct{}

func (discard) Write(p []byte) (int, error) { return len(p), nil }
