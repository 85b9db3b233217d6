//! `shouhu-server`: serve the sync API, and the admin commands a county
//! education bureau needs (schools, enrollment codes, devices).

use std::net::SocketAddr;
use std::path::PathBuf;

use clap::{Parser, Subcommand};
use shouhu_protocol::Scope;
use shouhu_server::{run, ApiError, AppState, ServerDb};
use uuid::Uuid;

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
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Serve the sync API.
    Serve {
        #[arg(long, default_value = "127.0.0.1:8470")]
        addr: SocketAddr,
    },
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
    match cli.command {
        Command::Serve { addr } => serve(cli.data, addr),
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

fn serve(data: PathBuf, addr: SocketAddr) -> Result<(), ApiError> {
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
        tracing::info!(%local, data = %data.display(), "shouhu-server listening");
        // Tests and scripts read the bound address from the first line.
        println!("listening on {local}");
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
        run(listener, AppState::new(db), shutdown)
            .await
            .map_err(|e| ApiError::Internal(e.to_string()))
    })
}
