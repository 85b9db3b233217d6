//! `shouhu-server`: serve the sync API, and the admin commands a county
//! education bureau needs (schools, enrollment codes, devices, users, the
//! audit log).
//!
//! `serve` speaks HTTPS. Its certificate is made once in the data directory
//! (self-signed; devices pin its SHA-256 fingerprint at enrollment, so no
//! certificate authority is involved) unless `--cert`/`--key` name the
//! county's own. `fingerprint` prints the fingerprint; `enroll` prints it
//! beside each code.

use std::io::{BufWriter, Write};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};

use chrono::{DateTime, NaiveDate, NaiveTime, Utc};
use clap::{Parser, Subcommand};
use shouhu_auth::Role;
use shouhu_protocol::Scope;
use shouhu_server::{
    audit_csv_line, run, run_tls, ApiError, AppState, AuditQuery, Credentials, NewDeviceScope,
    NewUser, NewUserScope, ServerDb, AUDIT_CSV_HEADER,
};
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
        /// Accept changes by users this server does not know (laptops with local accounts).
        #[arg(long)]
        local_users: bool,
        #[arg(long, default_value_t = 72)]
        ttl_hours: i64,
    },
    /// List devices.
    Devices,
    /// Revoke a device: it is refused from now on.
    Revoke { device: Uuid },
    /// Change an enrolled device's scope, and read its history.
    Device {
        #[command(subcommand)]
        command: DeviceCommand,
    },
    /// Manage user accounts (they sync down to the devices of their scope).
    User {
        #[command(subcommand)]
        command: UserCommand,
    },
    /// Read the county audit log: what devices uploaded (views, exports,
    /// log-ins, …) and every edit from the change log (field names, never
    /// values), oldest first. Read-only; entries are never edited or deleted.
    Audit {
        /// A login name or user id.
        #[arg(long)]
        user: Option<String>,
        #[arg(long)]
        device: Option<Uuid>,
        /// e.g. login, login_failed, view_child, view_note, export; edits:
        /// create, update, delete, restore, resolve (conflict resolutions);
        /// groups: edit (every edit), view (every view).
        #[arg(long)]
        action: Option<String>,
        /// A record id or a kind of target (child, psych_note, …).
        #[arg(long)]
        target: Option<String>,
        /// From this instant or date (RFC 3339, or YYYY-MM-DD in UTC).
        #[arg(long)]
        since: Option<String>,
        /// Before this instant or date (a date means up to the end of that day).
        #[arg(long)]
        until: Option<String>,
        /// At most this many entries, the oldest that match (to page on, give
        /// the last one's `at` as --since: entries at that instant repeat).
        #[arg(long)]
        limit: Option<usize>,
        #[arg(long, value_enum, default_value_t = AuditFormat::Json)]
        format: AuditFormat,
    },
}

#[derive(Subcommand)]
enum UserCommand {
    /// Create a user with an initial password they must change at first log-in.
    Add {
        #[arg(long)]
        login: String,
        /// The name shown in the app.
        #[arg(long)]
        name: String,
        /// teacher, counselor, principal, township_staff, county_admin, psych_supervisor.
        #[arg(long)]
        role: String,
        /// The school of a teacher, counselor or principal.
        #[arg(long, conflicts_with_all = ["township", "county"])]
        school: Option<Uuid>,
        /// The township of township staff.
        #[arg(long, conflicts_with = "county")]
        township: Option<String>,
        /// County-wide (county admins, psychology supervisors).
        #[arg(long)]
        county: bool,
        /// Read the initial password from standard input (else one is made and printed once).
        #[arg(long)]
        password_stdin: bool,
    },
    /// List users as JSON (never their password hashes).
    List,
    /// Give a user a new initial password (they must change it at next log-in).
    ResetPassword {
        login: String,
        #[arg(long)]
        password_stdin: bool,
    },
    /// Remove a user: they can no longer log in or sync new work; nothing is deleted.
    Remove { login: String },
}

#[derive(Subcommand)]
enum DeviceCommand {
    /// Set the schools a device holds (replacing its scope). Its pending
    /// changes made before this still go through; then it removes its copy
    /// of every school that left.
    SetScope {
        device: Uuid,
        /// A school the device serves (repeatable).
        #[arg(long)]
        school: Vec<Uuid>,
        /// Every school of this township (repeatable).
        #[arg(long)]
        township: Vec<String>,
    },
    /// A device's scope changes as JSON, oldest first.
    ScopeHistory { device: Uuid },
}

#[derive(Clone, Copy, clap::ValueEnum)]
enum AuditFormat {
    Json,
    Csv,
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
            local_users,
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
                    local_users,
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
        Command::User { command } => user_command(&cli.data, command),
        Command::Device { command } => device_command(&cli.data, command),
        Command::Audit {
            user,
            device,
            action,
            target,
            since,
            until,
            limit,
            format,
        } => {
            let q = AuditQuery {
                user,
                device,
                action,
                target,
                since: since.map(|s| parse_instant(&s, false)).transpose()?,
                until: until.map(|s| parse_instant(&s, true)).transpose()?,
                limit,
            };
            print_audit(&ServerDb::open(&cli.data)?, &q, format)
        }
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

fn read_password_stdin() -> Result<String, ApiError> {
    let mut line = String::new();
    std::io::stdin()
        .read_line(&mut line)
        .map_err(|e| ApiError::BadRequest(format!("cannot read the password: {e}")))?;
    Ok(line.trim_end_matches(['\r', '\n']).to_string())
}

/// An instant or a date (UTC); `end` makes a date mean the end of that day.
/// Write the audit view to standard output entry by entry (a JSON array, or
/// CSV with a header line): a county's change log need not fit in memory.
fn print_audit(db: &ServerDb, q: &AuditQuery, format: AuditFormat) -> Result<(), ApiError> {
    let io = |e: std::io::Error| ApiError::Internal(format!("cannot write the output: {e}"));
    let mut out = BufWriter::new(std::io::stdout().lock());
    let mut first = true;
    match format {
        AuditFormat::Json => out.write_all(b"[").map_err(io)?,
        AuditFormat::Csv => out.write_all(AUDIT_CSV_HEADER.as_bytes()).map_err(io)?,
    }
    db.audit_view_each(q, |row| {
        match format {
            AuditFormat::Json => {
                out.write_all(if first { b"\n" } else { b",\n" })
                    .map_err(io)?;
                serde_json::to_writer_pretty(&mut out, &row)?;
            }
            AuditFormat::Csv => out.write_all(audit_csv_line(&row).as_bytes()).map_err(io)?,
        }
        first = false;
        Ok(())
    })?;
    if let AuditFormat::Json = format {
        out.write_all(if first { b"]\n" } else { b"\n]\n" })
            .map_err(io)?;
    }
    out.flush().map_err(io)
}

fn parse_instant(text: &str, end: bool) -> Result<DateTime<Utc>, ApiError> {
    if let Ok(t) = DateTime::parse_from_rfc3339(text.trim()) {
        return Ok(t.with_timezone(&Utc));
    }
    let d = NaiveDate::parse_from_str(text.trim(), "%Y-%m-%d").map_err(|_| {
        ApiError::BadRequest(format!(
            "时间格式应为 RFC 3339 或 YYYY-MM-DD / expected RFC 3339 or YYYY-MM-DD: {text}"
        ))
    })?;
    let d = if end { d.succ_opt().unwrap_or(d) } else { d };
    Ok(d.and_time(NaiveTime::MIN).and_utc())
}

fn print_credentials(c: &Credentials) -> Result<(), ApiError> {
    print_json(&c.user)?;
    if let Some(pw) = &c.initial_password {
        println!("初始密码 / initial password (shown once): {pw}");
    }
    Ok(())
}

fn user_command(data: &std::path::Path, command: UserCommand) -> Result<(), ApiError> {
    let mut db = ServerDb::open(data)?;
    match command {
        UserCommand::Add {
            login,
            name,
            role,
            school,
            township,
            county,
            password_stdin,
        } => {
            let role = Role::parse(role.trim()).ok_or(ApiError::UnknownRole(role))?;
            let scope = match (school, township, county) {
                (Some(s), None, false) => NewUserScope::School(s),
                (None, Some(t), false) => NewUserScope::Township(t),
                (None, None, true) => NewUserScope::County,
                _ => {
                    return Err(ApiError::ScopeInvalid {
                        reason: "give one of --school, --township, --county".into(),
                    })
                }
            };
            let password = password_stdin.then(read_password_stdin).transpose()?;
            print_credentials(&db.add_user(NewUser {
                login_name: login,
                display_name: name,
                role,
                scope,
                password,
            })?)
        }
        UserCommand::List => print_json(&db.users()?),
        UserCommand::ResetPassword {
            login,
            password_stdin,
        } => {
            let password = password_stdin.then(read_password_stdin).transpose()?;
            print_credentials(&db.reset_password(&login, password)?)
        }
        UserCommand::Remove { login } => print_json(&db.remove_user(&login)?),
    }
}

fn device_command(data: &std::path::Path, command: DeviceCommand) -> Result<(), ApiError> {
    let mut db = ServerDb::open(data)?;
    match command {
        DeviceCommand::SetScope {
            device,
            school,
            township,
        } => {
            let new = NewDeviceScope {
                schools: school,
                townships: township,
            };
            match db.set_device_scope(device, &new)? {
                Some(change) => print_json(&change),
                None => {
                    println!("范围未变 / the scope is unchanged");
                    Ok(())
                }
            }
        }
        DeviceCommand::ScopeHistory { device } => print_json(&db.device_scope_history(device)?),
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
