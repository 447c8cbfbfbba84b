//! `attune token`: where the WebSocket token is and how a client uses it. The token lives in
//! the data directory (`ws-token`, mode 0600); this creates it if the daemon has not yet, so an
//! app can be set up before the first `attune run --ws`. It also prints the address of the
//! live page the WebSocket serves.

use super::Common;

/// Arguments of `token`.
#[derive(Debug, clap::Args)]
#[command(
    after_help = "Examples:\n  attune token\n  attune token --show\n  attune token --json --ws 127.0.0.1:9001"
)]
pub struct TokenArgs {
    /// Print the token itself too (it grants the data the daemon serves: keep it private).
    #[arg(long)]
    pub show: bool,
    /// The address the WebSocket listens on (for the example URL).
    #[arg(long, value_name = "ADDR", default_value = "127.0.0.1:8765")]
    pub ws: String,
    /// One JSON object: token_file, url, page (and token with --show).
    #[arg(long)]
    pub json: bool,
}

/// Runs `attune token`.
#[cfg(feature = "ws")]
pub fn run(common: &Common, a: &TokenArgs) -> anyhow::Result<()> {
    use crate::publish::transport::ws::token;
    let (file, tok) = token::ensure(&common.data_dir()).map_err(|e| anyhow::anyhow!(e))?;
    let url = format!("ws://{}/?token=", a.ws);
    // The live page reads the token from the URL's fragment, which browsers never send.
    let page = format!("http://{}/#token=", a.ws);
    if a.json {
        let mut v = serde_json::json!({
            "token_file": file,
            "url": format!("{url}<token>"),
            "page": format!("{page}<token>"),
        });
        if a.show {
            v["token"] = serde_json::json!(tok);
        }
        println!("{v}");
        return Ok(());
    }
    println!(
        "WebSocket token: {} (mode 0600; delete it for a new one)",
        file.display()
    );
    println!("Connect:         {url}$(cat {})", file.display());
    println!("             or: the header `Authorization: Bearer <token>` (native clients)");
    println!(
        "Other web pages must also be listed in [ws] allowed_origins (the live page needs nothing more)."
    );
    if a.show {
        println!("Token:           {tok}");
        println!("Live page:       {page}{tok}");
    } else {
        println!(
            "Live page:       {page}$(cat {})   (--show prints it ready to open)",
            file.display()
        );
    }
    Ok(())
}

/// Runs `attune token` (this build has no WebSocket).
#[cfg(not(feature = "ws"))]
pub fn run(_common: &Common, _a: &TokenArgs) -> anyhow::Result<()> {
    anyhow::bail!("this attune was built without the WebSocket transport")
}
