package daemon_test

import (
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// TestReplayJobsBounded: past AUDITBUS_REPLAY_MAX_JOBS running jobs a
// start is 429 with Retry-After; a dry run writes nothing; GET
// /v1/replays pages; a finished job is removed with its files after
// AUDITBUS_REPLAY_RETENTION.
func TestReplayJobsBounded(t *testing.T) {
	hook, _ := hitCounter(t, http.StatusOK, "")
	replayDir := filepath.Join(t.TempDir(), "replays")
	l := startLive(t, "", "AUDITBUS_WEBHOOK_ALLOW=127.0.0.1", "AUDITBUS_REPLAY_MAX_JOBS=2", "AUDITBUS_REPLAY_DIR="+replayDir,
		"AUDITBUS_REPLAY_RETENTION=5s")
	l.storeEvents(t, "/jobs", 20)
	tok := l.tokenWith(t, "replay:write audit:read")
	slow := strings.Replace(replayBody(hook.URL), `"destination"`, `"rate":1,"destination"`, 1)

	// Dry runs, with a webhook too, leave the replay directory as it was.
	before := filesUnder(t, replayDir)
	for range 3 {
		l.mustCall(t, http.MethodPost, "/v1/replays?dry_run=true", tok, replayBody(hook.URL+"/dry"), http.StatusOK, nil)
	}
	if after := filesUnder(t, replayDir); after != before {
		t.Errorf("dry runs wrote files: before %q, after %q", before, after)
	}

	var a, b secJob
	l.mustCall(t, http.MethodPost, "/v1/replays", tok, slow, http.StatusAccepted, &a)
	l.mustCall(t, http.MethodPost, "/v1/replays", tok, slow, http.StatusAccepted, &b)
	code, h, body := l.call(t, http.MethodPost, "/v1/replays", tok, slow)
	if code != http.StatusTooManyRequests || h.Get("Retry-After") == "" || !strings.Contains(string(body), `"too_many_jobs"`) {
		t.Fatalf("third job with AUDITBUS_REPLAY_MAX_JOBS=2: %d Retry-After %q %s, want 429 too_many_jobs with Retry-After", code, h.Get("Retry-After"), body)
	}
	l.mustCall(t, http.MethodDelete, "/v1/replays/"+a.ID, tok, "", http.StatusOK, nil)
	var c secJob
	l.mustCall(t, http.MethodPost, "/v1/replays", tok, slow, http.StatusAccepted, &c)
	if code, _, body := l.call(t, http.MethodPost, "/v1/replays/"+a.ID+"/retry", tok, ""); code != http.StatusTooManyRequests {
		t.Errorf("retry past the bound: %d %s, want 429", code, body)
	}

	// Pages of one job: b and c run, a was cancelled.
	var page struct {
		Replays []secJob `json:"replays"`
		Next    string   `json:"next"`
	}
	var ids []string
	for after := ""; ; after = page.Next {
		page.Next = ""
		l.mustCall(t, http.MethodGet, "/v1/replays?limit=1&after="+after, tok, "", http.StatusOK, &page)
		for _, j := range page.Replays {
			ids = append(ids, j.ID)
		}
		if len(page.Replays) > 1 || page.Next == "" {
			break
		}
	}
	if strings.Join(ids, ",") != strings.Join([]string{c.ID, b.ID, a.ID}, ",") {
		t.Errorf("paged jobs %v, want %v newest first", ids, []string{c.ID, b.ID, a.ID})
	}
	if code, _, body := l.call(t, http.MethodGet, "/v1/replays?limit=100000", tok, ""); code != http.StatusBadRequest {
		t.Errorf("limit past the bound: %d %s, want 400", code, body)
	}

	// Finished jobs go after the retention, with their files.
	for _, id := range []string{b.ID, c.ID} {
		l.mustCall(t, http.MethodDelete, "/v1/replays/"+id, tok, "", http.StatusOK, nil)
	}
	waitUntil(t, "the finished jobs and their files are removed", 30*time.Second, func() bool {
		var all struct {
			Replays []secJob `json:"replays"`
		}
		l.mustCall(t, http.MethodGet, "/v1/replays", tok, "", http.StatusOK, &all)
		return len(all.Replays) == 0 && filesUnder(t, replayDir) == ""
	})
}

// filesUnder lists the files under dir, "" when there are none.
func filesUnder(t *testing.T, dir string) string {
	t.Helper()
	var names []string
	err := filepath.Walk(dir, func(p string, fi os.FileInfo, err error) error {
		if err != nil {
			if os.IsNotExist(err) {
				return nil
			}
			return err
		}
		if !fi.IsDir() {
			names = append(names, strings.TrimPrefix(p, dir))
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return strings.Join(names, " ")
}
