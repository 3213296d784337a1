// Command evalreport writes EVAL.md from the data sets and the output of
// `stagegate scan --timings` over each of them (see monitors/eval). It is run by
// `make eval`.
package main

import (
	"context"
	"flag"
	"fmt"
	"os"
	"time"

	"github.com/stagegate/stagegate/monitors/eval"
	"github.com/stagegate/stagegate/monitors/suite"
)

func main() {
	datasets := flag.String("datasets", "../shared/datasets", "folder of the labeled data sets")
	scans := flag.String("scans", ".eval", "folder of the scan outputs, one per data set, same names")
	out := flag.String("out", "EVAL.md", "report file")
	procs := flag.Int("procs", 2, "GOMAXPROCS and workers of the throughput measure")
	dur := flag.Duration("bench", 3*time.Second, "minimum duration of the throughput measure")
	flag.Parse()
	if err := run(*datasets, *scans, *out, *procs, *dur); err != nil {
		fmt.Fprintln(os.Stderr, "evalreport:", err)
		os.Exit(1)
	}
}

func run(datasets, scans, out string, procs int, dur time.Duration) error {
	data, err := eval.Load(datasets, scans)
	if err != nil {
		return err
	}
	dets, err := suite.Default(suite.Config{}, suite.Deps{})
	if err != nil {
		return err
	}
	x := eval.Extras{Vectors: eval.Vectors()}
	for _, d := range dets {
		x.Detectors = append(x.Detectors, eval.DetectorInfo{Name: d.Name(), Version: d.Version()})
	}
	x.Throughput = eval.Measure(context.Background(), dets, eval.Interactions(data, 4000), procs, dur)
	f, err := os.Create(out)
	if err != nil {
		return err
	}
	if err := eval.Render(f, data, x); err != nil {
		f.Close()
		return err
	}
	if err := f.Close(); err != nil {
		return err
	}
	fmt.Printf("wrote %s (throughput %.0f interactions/s on %d procs)\n", out, x.Throughput.PerSecond, procs)
	return nil
}
