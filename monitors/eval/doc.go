// Package eval measures the detectors against the labeled third-party data
// sets in ../shared/datasets (see its README) and renders EVAL.md.
//
// Data comes in as the data set files (JSON lines with id, labels, prompt,
// response, source_label) and, for each, the output of `stagegate scan
// --timings` over it. Rows are split in two halves by a hash of their id
// (Split): detector rules were tuned looking only at the "tune" half; every
// headline figure is computed on the "report" half. Data goes out as a
// Markdown report: per detector and label, precision, recall, F1 and the
// false-positive rate with 95% confidence intervals (Wilson score intervals;
// F1 by a seeded bootstrap), entity-level PII figures against the Presidio
// spans, per-detector time per interaction, and each target of issue 6 with
// whether it is met and by how much it is missed.
package eval
