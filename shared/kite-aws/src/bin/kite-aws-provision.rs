//! Creates Kite's table (from template.yaml's `KiteTable`), bucket, queue and schedule
//! group in an AWS emulator, for end-to-end tests: `kite-aws-provision TABLE BUCKET
//! [QUEUE [GROUP]]` (the group is named TABLE unless given) prints `TABLE_NAME=…`,
//! `BUCKET_NAME=…`, `QUEUE_URL=…` and `KITE_SCHEDULE_GROUP=…` lines for a shell to export.
//! Credentials, region and `AWS_ENDPOINT_URL` come from the environment.

use std::process::ExitCode;

#[tokio::main(flavor = "current_thread")]
async fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    if !(2..=4).contains(&args.len()) {
        eprintln!("usage: kite-aws-provision TABLE BUCKET [QUEUE [GROUP]]");
        return ExitCode::from(2);
    }
    if std::env::var("AWS_ENDPOINT_URL").map_or(true, |v| v.is_empty()) {
        eprintln!("kite-aws-provision creates resources in an emulator only: set AWS_ENDPOINT_URL");
        return ExitCode::from(2);
    }
    let queue = args.get(2).map(String::as_str).filter(|q| !q.is_empty());
    let group = args.get(3).unwrap_or(&args[0]);
    match kite_aws::provision::provision(&args[0], &args[1], queue, group).await {
        Ok(config) => {
            println!("TABLE_NAME={}", config.table_name);
            println!("BUCKET_NAME={}", config.bucket_name);
            if let Some(url) = config.queue_url {
                println!("QUEUE_URL={url}");
            }
            println!("KITE_SCHEDULE_GROUP={}", config.schedule_group);
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("kite-aws-provision: {e}");
            ExitCode::FAILURE
        }
    }
}
