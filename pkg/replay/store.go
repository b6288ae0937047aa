package replay

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"

	"github.com/auditbus/auditbus/bus"
)

// The job directory holds one file per job, "<id>.json", holding the
// job's JSON form. Each write goes to a temporary file that is synced and
// renamed over the old one, and the directory is synced, so after a crash
// a job file is the old or the new version, never a mix.
const jobSuffix = ".json"

// saveJob writes j to dir atomically and durably.
func saveJob(dir string, j *Job) error {
	b, err := json.Marshal(j)
	if err != nil {
		return fmt.Errorf("replay: encode job %s: %w", j.ID, err)
	}
	if err := writeFileAtomic(dir, j.ID+jobSuffix, b); err != nil {
		return fmt.Errorf("replay: save job %s: %w", j.ID, err)
	}
	return nil
}

func writeFileAtomic(dir, name string, b []byte) error {
	f, err := os.CreateTemp(dir, "."+name+".tmp-*")
	if err != nil {
		return err
	}
	tmp := f.Name()
	_, err = f.Write(b)
	if err == nil {
		err = f.Sync()
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = os.Rename(tmp, filepath.Join(dir, name))
	}
	if err != nil {
		_ = os.Remove(tmp)
		return err
	}
	d, err := os.Open(dir)
	if err != nil {
		return err
	}
	err = d.Sync()
	if cerr := d.Close(); err == nil {
		err = cerr
	}
	return err
}

// loadJobs reads every job file in dir and removes temporary files that a
// crash left behind.
func loadJobs(dir string) ([]*Job, error) {
	ents, err := os.ReadDir(dir)
	if err != nil {
		return nil, fmt.Errorf("replay: read job directory %s: %w", dir, err)
	}
	var jobs []*Job
	for _, e := range ents {
		name := e.Name()
		switch {
		case e.IsDir():
		case strings.HasPrefix(name, ".") && strings.Contains(name, ".tmp-"):
			_ = os.Remove(filepath.Join(dir, name))
		case strings.HasSuffix(name, jobSuffix):
			j, err := loadJob(filepath.Join(dir, name))
			if err != nil {
				return nil, err
			}
			jobs = append(jobs, j)
		}
	}
	return jobs, nil
}

func loadJob(path string) (*Job, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("replay: read job file: %w", err)
	}
	var f jobFile
	if err := json.Unmarshal(b, &f); err != nil {
		return nil, fmt.Errorf("replay: job file %s: %w", path, err)
	}
	if f.ID == "" || f.ID+jobSuffix != filepath.Base(path) {
		return nil, fmt.Errorf("replay: job file %s: holds job id %q", path, f.ID)
	}
	j, r := &f.Job, f.Request
	j.Request = Request{Filter: r.Filter.filter(), Rate: r.Rate, Name: r.Name, Redrive: r.Redrive,
		Destination: unresolved(r.Destination)}
	if r.DeadLetter != "" {
		j.Request.DeadLetter = unresolved(r.DeadLetter)
	}
	return j, nil
}

// errUnresolved is the error of a target read back from a job file and
// not yet resolved.
var errUnresolved = errors.New("target not resolved")

// unresolved stands for a target read back from a job file, by its name,
// until Options.Resolve finds the real one.
type unresolved string

func (u unresolved) Publish(context.Context, []bus.Event) error {
	return fmt.Errorf("replay: publish to %q: %w", string(u), errUnresolved)
}

func (u unresolved) String() string { return string(u) }
