package run

import (
	"encoding/xml"
	"fmt"
	"io"
	"strings"
)

// JUnit XML, as CI systems read it: one testsuite per run file, one
// testcase per expectation, and a testcase "run" with an error when the
// run could not be carried out.
type junitSuites struct {
	XMLName  xml.Name     `xml:"testsuites"`
	Name     string       `xml:"name,attr"`
	Tests    int          `xml:"tests,attr"`
	Failures int          `xml:"failures,attr"`
	Errors   int          `xml:"errors,attr"`
	Skipped  int          `xml:"skipped,attr"`
	Time     string       `xml:"time,attr"`
	Suites   []junitSuite `xml:"testsuite"`
}

type junitSuite struct {
	Name     string      `xml:"name,attr"`
	File     string      `xml:"file,attr,omitempty"`
	Tests    int         `xml:"tests,attr"`
	Failures int         `xml:"failures,attr"`
	Errors   int         `xml:"errors,attr"`
	Skipped  int         `xml:"skipped,attr"`
	Time     string      `xml:"time,attr"`
	Cases    []junitCase `xml:"testcase"`
}

type junitCase struct {
	Name      string        `xml:"name,attr"`
	Classname string        `xml:"classname,attr"`
	File      string        `xml:"file,attr,omitempty"`
	Line      int           `xml:"line,attr,omitempty"`
	Time      string        `xml:"time,attr"`
	Failure   *junitProblem `xml:"failure"`
	Error     *junitProblem `xml:"error"`
	Skipped   *junitProblem `xml:"skipped"`
}

type junitProblem struct {
	Message string `xml:"message,attr"`
	Type    string `xml:"type,attr,omitempty"`
	Text    string `xml:",chardata"`
}

// WriteJUnit writes the results as a JUnit XML report.
func WriteJUnit(w io.Writer, results []*Result) error {
	all := junitSuites{Name: "callbin scenario run"}
	var total float64
	for _, r := range results {
		s := junitSuite{Name: r.File.Name, File: r.File.Path, Time: seconds(r.Elapsed.Seconds())}
		total += r.Elapsed.Seconds()
		for i := range r.File.Expect {
			e := &r.File.Expect[i]
			c := junitCase{Name: fmt.Sprintf("%s (line %d)", e.Title(), e.Line), Classname: r.File.Name,
				File: r.File.Path, Line: e.Line, Time: "0"}
			switch {
			case r.Skipped != "":
				c.Skipped = &junitProblem{Message: r.Skipped}
				s.Skipped++
			case i >= len(r.Checks):
				c.Error = &junitProblem{Message: "not checked: the run stopped before", Type: "error"}
				s.Errors++
			case !r.Checks[i].Passed():
				f := r.Checks[i].Failures
				c.Failure = &junitProblem{Message: f[0], Type: "expectation", Text: strings.Join(f, "\n")}
				s.Failures++
			}
			s.Cases = append(s.Cases, c)
		}
		if r.Err != nil {
			s.Cases = append(s.Cases, junitCase{Name: "run", Classname: r.File.Name, File: r.File.Path, Time: s.Time,
				Error: &junitProblem{Message: r.Err.Error(), Type: "error"}})
			s.Errors++
		}
		s.Tests = len(s.Cases)
		all.Tests += s.Tests
		all.Failures += s.Failures
		all.Errors += s.Errors
		all.Skipped += s.Skipped
		all.Suites = append(all.Suites, s)
	}
	all.Time = seconds(total)
	if _, err := io.WriteString(w, xml.Header); err != nil {
		return err
	}
	enc := xml.NewEncoder(w)
	enc.Indent("", "  ")
	if err := enc.Encode(all); err != nil {
		return fmt.Errorf("junit: %w", err)
	}
	_, err := io.WriteString(w, "\n")
	return err
}

func seconds(s float64) string { return fmt.Sprintf("%.3f", s) }
