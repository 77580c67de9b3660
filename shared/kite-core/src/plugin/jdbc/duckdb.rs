//! DuckDB's tasks (`io.kestra.plugin.jdbc.duckdb.Query` and `Queries`): an embedded
//! database in the task run's working directory, with the files around it that Kestra's
//! plugin has (`inputFiles` written in, `outputFiles` uploaded afterwards, a database file
//! to start from and one to keep). `{{ workingDir }}` and `{{ outputFiles.key }}` render
//! to marks the worker replaces with the folder it made, as for the script tasks.

use serde_json::{Map, Value};

use crate::plugin::props::Props;
use crate::plugin::scripts::{prepare, InputFile, WORKING_DIR_MARK};
use crate::plugin::{Check, Property};

/// Where the statements run.
#[derive(Debug, Clone, PartialEq)]
pub enum DuckDbPath {
    /// `jdbc:duckdb:` (the default): a new database in the task run's working directory.
    New,
    /// An absolute file path: that file, its folder being the working directory.
    File(String),
    /// Another DuckDB target (`md:my_db?motherduck_token=…`), opened as written.
    Other(String),
}

/// A DuckDB database of a task run and the files around it.
#[derive(Debug, Clone, PartialEq)]
pub struct DuckDbDatabase {
    pub path: DuckDbPath,
    /// `databaseUri`: a `kestra:///` database file copied in and opened instead.
    pub database_uri: Option<String>,
    /// `outputDbFile`: the database file is stored after the statements (`databaseUri`).
    pub output_db_file: bool,
    /// `inputFiles`: written into the working directory first.
    pub input_files: Vec<(String, InputFile)>,
    /// `outputFiles`: keys of files made empty in the working directory, uploaded after.
    pub output_files: Vec<String>,
    /// `communityExtensions` as written; `None`: Kestra's default (`ion`), loaded only
    /// when this host already has it.
    pub community_extensions: Option<Vec<String>>,
}

pub(super) const DUCKDB_EXTRA: [Property; 5] = [
    Property::new("inputFiles", Check::Any),
    Property::new("outputFiles", Check::Any),
    Property::new("databaseUri", Check::Any),
    Property::new("outputDbFile", Check::Any),
    Property::new("communityExtensions", Check::Any),
];

const URL_PREFIX: &str = "jdbc:duckdb:";

/// The variables DuckDB's properties see: `workingDir` and `outputFiles.<key>`.
pub fn variables(properties: &Map<String, Value>) -> Map<String, Value> {
    let mut vars = Map::new();
    vars.insert("workingDir".into(), Value::String(WORKING_DIR_MARK.into()));
    if let Some(Value::Array(keys)) = properties.get("outputFiles") {
        let files: Map<String, Value> = keys
            .iter()
            .filter_map(Value::as_str)
            .map(|key| {
                (
                    key.to_string(),
                    Value::String(format!("{WORKING_DIR_MARK}/{key}")),
                )
            })
            .collect();
        vars.insert("outputFiles".into(), Value::Object(files));
    }
    vars
}

/// The database of a DuckDB task from its properties.
pub(super) fn database(p: &Props, multiple: bool) -> Result<DuckDbDatabase, String> {
    let url = p.rendered("url")?.unwrap_or_else(|| URL_PREFIX.into());
    let url = url.trim();
    let Some(target) = url.strip_prefix(URL_PREFIX) else {
        return Err(format!(
            "Invalid DuckDB url '{url}': expected jdbc:duckdb: or jdbc:duckdb:/path/to/file.db"
        ));
    };
    let path = match target.trim() {
        "" => DuckDbPath::New,
        file if file.starts_with('/') => DuckDbPath::File(file.to_string()),
        _ if multiple => {
            return Err("The database file path is not valid (Path to database file must be absolute)".into())
        }
        other => DuckDbPath::Other(other.to_string()),
    };
    let output_files = p.list("outputFiles")?.unwrap_or_default();
    for key in &output_files {
        prepare::relative_path(key)?;
    }
    let community_extensions = match p.properties.get("communityExtensions") {
        None | Some(Value::Null) => None,
        Some(_) => Some(p.list("communityExtensions")?.unwrap_or_default()),
    };
    Ok(DuckDbDatabase {
        path,
        database_uri: p.rendered("databaseUri")?.filter(|u| !u.trim().is_empty()),
        output_db_file: p.flag("outputDbFile", false)?,
        input_files: prepare::input_files(p)?,
        output_files,
        community_extensions,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::plugin::jdbc::{Database, SqlOp};
    use crate::plugin::{by_name, IoCall};
    use serde_json::json;

    fn prepare(task: &str, properties: Value) -> Result<IoCall, String> {
        let spec = by_name(task).expect("registered");
        let render = |v: &Value| -> Result<String, crate::expression::ExpressionError> {
            Ok(v.as_str().map_or_else(|| v.to_string(), str::to_string))
        };
        (spec.prepare)(properties.as_object().expect("an object"), &render)
    }

    #[test]
    fn defaults_and_files() {
        let call = prepare(
            "io.kestra.plugin.jdbc.duckdb.Query",
            json!({"sql": "SELECT * FROM read_csv_auto('in.csv') WHERE a = :a", "parameters": {"a": 1},
                   "inputFiles": {"in.csv": "kestra:///ns/f/executions/e/x.csv"}, "outputFiles": ["out"]}),
        )
        .unwrap();
        let IoCall::Sql(call) = call else { panic!() };
        let Database::DuckDb(db) = &call.database else {
            panic!()
        };
        assert_eq!(db.path, DuckDbPath::New);
        assert_eq!(db.output_files, ["out"]);
        assert!(!db.output_db_file);
        assert_eq!(
            db.input_files,
            [(
                "in.csv".to_string(),
                InputFile::Storage("kestra:///ns/f/executions/e/x.csv".into())
            )]
        );
        let SqlOp::Run(statements) = &call.op else {
            panic!()
        };
        assert_eq!(
            statements.statements[0].sql,
            "SELECT * FROM read_csv_auto('in.csv') WHERE a = $1"
        );
        assert_eq!(statements.statements[0].parameters, [json!(1)]);
        assert_eq!(call.files_read(), Vec::<&str>::new());
    }

    #[test]
    fn urls() {
        let db = |task: &str, url: &str| {
            prepare(task, json!({"sql": "SELECT 1", "url": url})).map(|call| match call {
                IoCall::Sql(call) => call.database,
                _ => panic!(),
            })
        };
        let query = "io.kestra.plugin.jdbc.duckdb.Query";
        let queries = "io.kestra.plugin.jdbc.duckdb.Queries";
        assert!(matches!(db(query, "jdbc:duckdb:/data/a.db").unwrap(),
            Database::DuckDb(d) if d.path == DuckDbPath::File("/data/a.db".into())));
        assert!(matches!(db(query, "jdbc:duckdb:md:my_db").unwrap(),
            Database::DuckDb(d) if d.path == DuckDbPath::Other("md:my_db".into())));
        assert_eq!(
            db(queries, "jdbc:duckdb:a.db").unwrap_err(),
            "The database file path is not valid (Path to database file must be absolute)"
        );
        assert!(db(query, "jdbc:postgresql://127.0.0.1/kestra")
            .unwrap_err()
            .starts_with("Invalid DuckDB url"));
    }

    #[test]
    fn working_dir_and_output_files_are_marks() {
        let vars = variables(json!({"outputFiles": ["out"]}).as_object().unwrap());
        assert_eq!(vars["workingDir"], json!(WORKING_DIR_MARK));
        assert_eq!(
            vars["outputFiles"]["out"],
            json!(format!("{WORKING_DIR_MARK}/out"))
        );
    }
}
