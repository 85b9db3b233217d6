//! `shouhu-server`: serve the sync API, and the admin commands a county
//! education bureau needs (schools, enrollment codes, devices).
//!
//! `serve` speaks HTTPS. Its certificate is made once in the data directory
//! (self-signed; devices pin its SHA-256 fingerprint at enrollment, so no
//! certificate authority is involved) unless `--cert`/`--key` name the
//! county's own. `fingerprint` prints the fingerprint; `enroll` prints it
//! beside each code.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};

use clap::{Parser, Subcommand};
use shouhu_protocol::Scope;
use shouhu_server::{run, run_tls, ApiError, AppState, ServerDb};
use shouhu_tls::ServerIdentity;
use uuid::Uuid;

/// How `serve` and `enroll` label the fingerprint (scripts read the line).
const FINGERPRINT_LABEL: &str = "certificate fingerprint (SHA-256):";

#[derive(Parser)]
#[command(
    name = "shouhu-server",
    version,
    about = "守护 Shouhu county sync server"
)]
struct Cli {
    /// Where the server keeps its database.
    #[arg(
        long,
        env = "SHOUHU_SERVER_DATA",
        default_value = "shouhu-server-data",
        global = true
    )]
    data: PathBuf,
    /// The county's own certificate (PEM, the server's first) instead of the
    /// self-signed one made in the data directory; with --key. Give it to
    /// `fingerprint` and `enroll` too (or set the variable once).
    #[arg(long, env = "SHOUHU_SERVER_CERT", global = true, requires = "key")]
    cert: Option<PathBuf>,
    /// The private key (PEM) of --cert.
    #[arg(long, env = "SHOUHU_SERVER_KEY", global = true, requires = "cert")]
    key: Option<PathBuf>,
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Serve the sync API over HTTPS (prints the address, then the
    /// certificate's fingerprint).
    Serve {
        #[arg(long, default_value = "127.0.0.1:8470")]
        addr: SocketAddr,
        /// Plain HTTP without TLS: only for tests and development on this
        /// computer (devices accept plain HTTP only from a loopback address).
        #[arg(long)]
        plain_http: bool,
    },
    /// Print the SHA-256 fingerprint of the server's certificate (making the
    /// certificate if there is none yet), for devices to pin at enrollment.
    Fingerprint,
    /// Add a school (its record syncs down to the devices of its scope).
    AddSchool {
        #[arg(long)]
        name: String,
        #[arg(long)]
        township: String,
        #[arg(long, default_value = "")]
        county: String,
        /// Use this id (e.g. to match records already on devices).
        #[arg(long)]
        id: Option<Uuid>,
    },
    /// List schools.
    Schools,
    /// Make a one-time enrollment code for a device.
    Enroll {
        /// A school the device serves (repeatable).
        #[arg(long)]
        school: Vec<Uuid>,
        /// Every school of this township (a township office's device).
        #[arg(long)]
        township: Option<String>,
        /// The device may hold psychological notes (counselors' devices).
        #[arg(long)]
        notes: bool,
        #[arg(long, default_value_t = 72)]
        ttl_hours: i64,
    },
    /// List devices.
    Devices,
    /// Revoke a device: it is refused from now on.
    Revoke { device: Uuid },
}

fn main() {
    let cli = Cli::parse();
    if let Err(e) = real_main(cli) {
        let body = e.body();
        eprintln!("error [{}] {}", body.code, body.message);
        std::process::exit(1);
    }
}

fn print_json(v: &impl serde::Serialize) -> Result<(), ApiError> {
    println!("{}", serde_json::to_string_pretty(v)?);
    Ok(())
}

fn real_main(cli: Cli) -> Result<(), ApiError> {
    let (cert, key) = (cli.cert.as_deref(), cli.key.as_deref());
    match cli.command {
        Command::Serve { addr, plain_http } => {
            let tls = if plain_http {
                None
            } else {
                Some(identity(&cli.data, cert, key)?)
            };
            serve(cli.data, addr, tls)
        }
        Command::Fingerprint => {
            let id = identity(&cli.data, cert, key)?;
            if id.created {
                eprintln!(
                    "made a new self-signed certificate: {}",
                    cli.data.join(shouhu_tls::cert::CERT_FILE).display()
                );
            }
            println!("{}", id.fingerprint);
            Ok(())
        }
        Command::AddSchool {
            name,
            township,
            county,
            id,
        } => {
            let mut db = ServerDb::open(&cli.data)?;
            let id = db.add_school(id, &name, &county, &township)?;
            println!("{id}");
            Ok(())
        }
        Command::Schools => print_json(&ServerDb::open(&cli.data)?.schools()?),
        Command::Enroll {
            mut school,
            township,
            notes,
            ttl_hours,
        } => {
            // Before the code: a certificate that cannot be read spends none.
            let fingerprint = identity(&cli.data, cert, key)?.fingerprint;
            let mut db = ServerDb::open(&cli.data)?;
            if let Some(t) = township {
                school.extend(db.township_schools(&t)?);
            }
            let code = db.create_enrollment(
                &Scope {
                    schools: school,
                    notes,
                },
                ttl_hours,
            )?;
            println!("{code}");
            // The device's user types both: the code, and the fingerprint
            // (or at least its first 16 hex digits) that it pins.
            println!("{FINGERPRINT_LABEL} {fingerprint}");
            Ok(())
        }
        Command::Devices => print_json(&ServerDb::open(&cli.data)?.devices()?),
        Command::Revoke { device } => {
            let mut db = ServerDb::open(&cli.data)?;
            if !db.revoke(device)? {
                return Err(ApiError::BadRequest(format!("no active device {device}")));
            }
            println!("revoked {device}");
            Ok(())
        }
    }
}

/// The certificate `serve` uses: `--cert`/`--key`, or the one in the data
/// directory (made there the first time).
fn identity(
    data: &Path,
    cert: Option<&Path>,
    key: Option<&Path>,
) -> Result<ServerIdentity, ApiError> {
    Ok(match (cert, key) {
        (Some(cert), Some(key)) => shouhu_tls::load(cert, key)?,
        _ => shouhu_tls::load_or_create(data, &[])?,
    })
}

fn is_loopback(addr: &SocketAddr) -> bool {
    addr.ip().is_loopback()
}

fn serve(data: PathBuf, addr: SocketAddr, tls: Option<ServerIdentity>) -> Result<(), ApiError> {
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info")),
        )
        .json()
        .init();
    let db = ServerDb::open(&data)?;
    let rt = tokio::runtime::Runtime::new().map_err(|e| ApiError::Internal(e.to_string()))?;
    rt.block_on(async move {
        let listener = tokio::net::TcpListener::bind(addr)
            .await
            .map_err(|e| ApiError::Internal(format!("cannot listen on {addr}: {e}")))?;
        let local = listener
            .local_addr()
            .map_err(|e| ApiError::Internal(e.to_string()))?;
        let scheme = if tls.is_some() { "https" } else { "http" };
        // Tests and scripts read the server's address from the first line
        // and the fingerprint from the second (before any log line).
        println!("listening on {scheme}://{local}");
        match &tls {
            Some(id) => {
                println!("{FINGERPRINT_LABEL} {}", id.fingerprint);
                if id.created {
                    println!(
                        "(a new self-signed certificate, {}: give devices this fingerprint with their enrollment codes)",
                        Path::new(&data).join(shouhu_tls::cert::CERT_FILE).display()
                    );
                }
            }
            None => warn_plain_http(&local),
        }
        tracing::info!(%local, scheme, data = %data.display(), "shouhu-server listening");
        if let Some(id) = &tls {
            tracing::info!(fingerprint = %id.fingerprint, created = id.created, "TLS certificate");
        }
        let shutdown = async {
            let ctrl_c = tokio::signal::ctrl_c();
            #[cfg(unix)]
            {
                let mut term =
                    match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())
                    {
                        Ok(s) => s,
                        Err(_) => {
                            let _ = ctrl_c.await;
                            return;
                        }
                    };
                tokio::select! {
                    _ = ctrl_c => {},
                    _ = term.recv() => {},
                }
            }
            #[cfg(not(unix))]
            {
                let _ = ctrl_c.await;
            }
            tracing::info!("shutting down");
        };
        let state = AppState::new(db);
        match tls {
            Some(id) => run_tls(listener, id.config, state, shutdown).await,
            None => run(listener, state, shutdown).await,
        }
        .map_err(|e| ApiError::Internal(e.to_string()))
    })
}

fn warn_plain_http(local: &SocketAddr) {
    eprintln!("**********************************************************************");
    eprintln!("警告 WARNING: --plain-http: NO TLS. Children's records and device");
    eprintln!("credentials cross the network unencrypted and unauthenticated.");
    eprintln!("Only for tests and development on this computer; devices refuse");
    eprintln!("plain HTTP from anything but a loopback address. Never in production.");
    if !is_loopback(local) {
        eprintln!("AND THIS ADDRESS ({local}) IS NOT LOOPBACK: other machines can listen in.");
    }
    eprintln!("**********************************************************************");
    tracing::warn!(%local, "serving plain HTTP without TLS (--plain-http)");
}
