package workload

import (
	"context"
	"strings"
	"testing"
	"time"
)

func TestVerify(t *testing.T) {
	w, err := New(Config{Events: 3, Size: 4, Batch: 2})
	if err != nil {
		t.Fatal(err)
	}
	type delivery struct {
		id   string
		size int
	}
	all := []delivery{{w.ID(0), 4}, {w.ID(1), 4}, {w.ID(2), 4}}
	tests := []struct {
		name    string
		got     []delivery
		wantErr string // "" for none
	}{
		{"every event once", all, ""},
		{"lost", all[:2], "only 2 of 3"},
		{"duplicate in place of one", []delivery{all[0], all[0], all[2]}, "1 events lost, 1 delivered twice"},
		{"extra duplicate", append(all[:3:3], all[1]), "0 events lost, 1 delivered twice"},
		{"unknown id", []delivery{all[0], {"nope", 4}, all[2]}, "1 with unknown ids"},
		{"short payload", []delivery{all[0], {w.ID(1), 3}, all[2]}, "payload other than 4 bytes"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			tl := newTally(w)
			for _, d := range tt.got {
				tl.record(d.id, d.size)
			}
			err := tl.verify(w)
			switch {
			case tt.wantErr == "" && err != nil:
				t.Fatalf("verify: %v", err)
			case tt.wantErr != "" && (err == nil || !strings.Contains(err.Error(), tt.wantErr)):
				t.Fatalf("verify = %v, want an error containing %q", err, tt.wantErr)
			}
		})
	}
}

func TestSystems(t *testing.T) {
	for _, s := range []System{Auditbus, Watermill} {
		t.Run(s.Name, func(t *testing.T) {
			// 1001 events in batches of 100 leaves a short last batch.
			w, err := New(Config{Events: 1001, Size: 64, Batch: 100})
			if err != nil {
				t.Fatal(err)
			}
			tr, err := s.Setup(w)
			if err != nil {
				t.Fatal(err)
			}
			ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
			defer cancel()
			res, err := tr.Run(ctx)
			if err != nil {
				t.Fatal(err)
			}
			if res.Events != w.Events || res.Elapsed <= 0 {
				t.Errorf("Run = %+v, want %d events in a positive time", res, w.Events)
			}
			if err := tr.Verify(); err != nil {
				t.Error(err)
			}
			if _, err := tr.Run(ctx); err == nil {
				t.Error("second Run succeeded, want an error")
			}
			if err := tr.Close(); err != nil {
				t.Error(err)
			}
		})
	}
}
