//! An operation's steps as they advance, on stderr: spinners on a terminal, plain lines
//! otherwise, nothing for JSON or YAML output (the final operation is printed instead).

use std::io::IsTerminal as _;
use std::time::Duration;

use indicatif::{MultiProgress, ProgressBar, ProgressDrawTarget, ProgressStyle};
use pharos_proto::v1 as pb;

use crate::commands::operations::step_state_name;
use crate::output::Output;

/// Shows each step's progress: spinners on a terminal, one line per step change otherwise.
pub(super) struct Progress {
    bars: Option<(MultiProgress, Vec<ProgressBar>)>,
    printed: Vec<i32>,
    quiet: bool,
}

impl Progress {
    pub(super) fn new(out: Output) -> Progress {
        let live = std::io::stderr().is_terminal() && !out.structured();
        Progress {
            bars: live.then(|| {
                (
                    MultiProgress::with_draw_target(ProgressDrawTarget::stderr()),
                    Vec::new(),
                )
            }),
            printed: Vec::new(),
            quiet: out.structured(),
        }
    }

    pub(super) fn show(&mut self, op: &pb::Operation) {
        if let Some((multi, bars)) = &mut self.bars {
            while bars.len() < op.steps.len() {
                let bar = multi.add(ProgressBar::new_spinner());
                bar.set_style(
                    ProgressStyle::with_template("{spinner} {prefix} {wide_msg}")
                        .expect("valid template"),
                );
                bar.enable_steady_tick(Duration::from_millis(120));
                bars.push(bar);
            }
            for (n, (step, bar)) in op.steps.iter().zip(bars.iter()).enumerate() {
                bar.set_prefix(format!(
                    "[{}/{}] {}",
                    n + 1,
                    op.steps.len(),
                    step.description
                ));
                let state = step_state_name(step.state);
                let message = if step.message.is_empty() {
                    state.to_owned()
                } else {
                    format!("{state}: {}", step.message)
                };
                match pb::StepState::try_from(step.state) {
                    Ok(pb::StepState::Succeeded) => bar.finish_with_message(format!("✓ {message}")),
                    Ok(pb::StepState::Failed) => bar.finish_with_message(format!("✗ {message}")),
                    Ok(pb::StepState::Skipped) => bar.finish_with_message(format!("- {message}")),
                    _ => bar.set_message(message),
                }
            }
            return;
        }
        if self.quiet {
            return;
        }
        self.printed.resize(op.steps.len(), 0);
        for (n, step) in op.steps.iter().enumerate() {
            if self.printed[n] != step.state {
                self.printed[n] = step.state;
                let mut line = format!(
                    "step {}/{} {}: {}",
                    n + 1,
                    op.steps.len(),
                    step.description,
                    step_state_name(step.state)
                );
                if !step.message.is_empty() {
                    line.push_str(&format!(" ({})", step.message));
                }
                eprintln!("{line}");
            }
        }
    }

    pub(super) fn finish(&mut self) {
        if let Some((_, bars)) = &self.bars {
            for bar in bars {
                if !bar.is_finished() {
                    bar.abandon();
                }
            }
        }
    }
}
