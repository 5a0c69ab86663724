//! `completions` and `man`: generated from the clap definition, so they never drift from
//! the real flags. They need no config: packaging runs them at build time.

use std::io::Write;

use anyhow::{Context, Result};
use clap::CommandFactory;

use crate::cli::{Cli, CompletionsArgs};

pub fn completions(args: &CompletionsArgs) -> Result<()> {
    let mut command = Cli::command();
    let name = command.get_name().to_string();
    let mut script = Vec::new();
    clap_complete::generate(args.shell, &mut command, name, &mut script);
    write_stdout(&script)
}

pub fn man() -> Result<()> {
    let page = man_page().context("cannot render the man page")?;
    write_stdout(page.as_bytes())
}

/// One page for the whole tool: clap_mangen would point at a page per subcommand
/// (`nix-cache-login-login(1)`), but packaging installs only this one, so each
/// subcommand gets a subsection here, with its synopsis and options.
fn man_page() -> std::io::Result<String> {
    let mut command = Cli::command().disable_help_subcommand(true);
    command.build();
    let man = clap_mangen::Man::new(command.clone());
    let mut page = String::new();
    // The first part keeps the string definition that every render starts with.
    man.render_title(&mut Sink(&mut page))?;
    page.push_str(&part(|w| man.render_name_section(w))?);
    page.push_str(&part(|w| man.render_synopsis_section(w))?);
    page.push_str(&part(|w| man.render_description_section(w))?);
    page.push_str(&part(|w| man.render_options_section(w))?);

    page.push_str(".SH COMMANDS\n");
    // Unbuilt, the subcommands do not repeat the global options in every subsection.
    for sub in Cli::command()
        .get_subcommands()
        .filter(|s| !s.is_hide_set())
    {
        let name = sub.get_name().to_string();
        let sub = sub
            .clone()
            .bin_name(format!("{} {name}", command.get_name()));
        let sub_man = clap_mangen::Man::new(sub.clone());
        page.push_str(&format!(".SS {name}\n"));
        page.push_str(&without_heading(part(|w| {
            sub_man.render_synopsis_section(w)
        })?));
        page.push_str(".PP\n");
        page.push_str(&without_heading(part(|w| {
            sub_man.render_description_section(w)
        })?));
        page.push_str(&without_heading(part(|w| {
            sub_man.render_options_section(w)
        })?));
        if sub.get_after_help().is_some() || sub.get_after_long_help().is_some() {
            page.push_str(".PP\n");
            page.push_str(&without_heading(part(|w| sub_man.render_extra_section(w))?));
        }
    }

    page.push_str(&part(|w| man.render_extra_section(w))?);
    page.push_str(&part(|w| man.render_version_section(w))?);
    Ok(page)
}

/// One rendered section without the string definition every render starts with.
fn part(render: impl FnOnce(&mut dyn Write) -> std::io::Result<()>) -> std::io::Result<String> {
    let mut text = String::new();
    render(&mut Sink(&mut text))?;
    let mut rest = text.as_str();
    for line in [".ie \\n(.g .ds Aq \\(aq\n", ".el .ds Aq '\n"] {
        rest = rest.strip_prefix(line).unwrap_or(rest);
    }
    Ok(rest.to_string())
}

/// A section's body, to nest it under a `.SS` heading.
fn without_heading(section: String) -> String {
    section
        .lines()
        .filter(|line| !line.starts_with(".SH "))
        .map(|line| format!("{line}\n"))
        .collect()
}

/// Collects roff (always UTF-8: it is made from our own strings) into a String.
struct Sink<'a>(&'a mut String);

impl Write for Sink<'_> {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.push_str(&String::from_utf8_lossy(buf));
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

fn write_stdout(bytes: &[u8]) -> Result<()> {
    let mut stdout = std::io::stdout().lock();
    stdout
        .write_all(bytes)
        .and_then(|()| stdout.flush())
        .context("cannot write to stdout")
}
