//! `racker plan`: the address plan and roles, without touching the network
//! (the view is racker-bootstrap's [`PlanView`]).

use std::process::ExitCode;

use racker_bootstrap::plan::{PLAN_TABLE_HEADER, PlanView};

use crate::context::{PlanArgs, SelectionArgs, load_selection};
use crate::globals::Globals;

/// Arguments of `racker plan`.
#[derive(Debug, clap::Args)]
#[command(after_help = "Examples:
  racker plan
  racker plan --provision lokomotive --num-controllers 3 --controller-type red
  racker plan --exclude \"00:11:22:33:44:10 00:11:22:33:44:21\" -o json
  racker plan --subnet-prefix 10.20.0 --prefix-length 22")]
pub(crate) struct PlanCmd {
    #[command(flatten)]
    plan: PlanArgs,
    #[command(flatten)]
    selection: SelectionArgs,
}

/// The text and wide forms are the same: the table already has every column.
pub(crate) fn run(globals: &Globals, args: PlanCmd) -> anyhow::Result<ExitCode> {
    let (rack, selection) = load_selection(globals, &args.plan, &args.selection)?;
    let view = PlanView::new(&rack, &selection);
    crate::output::emit(globals.output, "plan", &view, |_wide| {
        view.head_lines().iter().for_each(|l| println!("{l}"));
        crate::table::print_rows(&PLAN_TABLE_HEADER, &view.rows());
        Ok(())
    })?;
    Ok(ExitCode::SUCCESS)
}
