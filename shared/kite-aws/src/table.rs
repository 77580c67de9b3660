//! The table definition, read from `template.yaml`'s `KiteTable` resource: tests and
//! local emulation create the table from the same text that deploys it.

use aws_sdk_dynamodb::types::{
    AttributeDefinition, BillingMode, GlobalSecondaryIndex, KeySchemaElement, KeyType, Projection,
    ProjectionType, ScalarAttributeType, StreamSpecification, StreamViewType, TimeToLiveSpecification,
};
use serde_yaml::Value;

/// The SAM template at the root of the repository.
pub const TEMPLATE: &str = include_str!("../../../template.yaml");
/// The logical id of the table in the template.
pub const TABLE_RESOURCE: &str = "KiteTable";

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TableError {
    #[error("template.yaml: {0}")]
    Template(String),
    #[error("cannot create the table: {0}")]
    Create(String),
}

/// A global secondary index: name, (attribute, HASH|RANGE) keys, projection type.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IndexDefinition {
    pub name: String,
    pub keys: Vec<(String, String)>,
    pub projection: String,
}

/// What `AWS::DynamoDB::Table` properties Kite relies on.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TableDefinition {
    /// (name, S|N|B)
    pub attributes: Vec<(String, String)>,
    pub keys: Vec<(String, String)>,
    pub indexes: Vec<IndexDefinition>,
    pub billing_mode: String,
    pub stream_view_type: Option<String>,
    pub ttl_attribute: Option<String>,
}

fn field<'a>(v: &'a Value, name: &str) -> Result<&'a Value, TableError> {
    v.get(name)
        .ok_or_else(|| TableError::Template(format!("{TABLE_RESOURCE}: missing {name}")))
}

fn text(v: &Value, name: &str) -> Result<String, TableError> {
    field(v, name)?
        .as_str()
        .map(str::to_string)
        .ok_or_else(|| TableError::Template(format!("{TABLE_RESOURCE}: {name} is not a string")))
}

fn list<'a>(v: &'a Value, name: &str) -> Result<&'a Vec<Value>, TableError> {
    field(v, name)?
        .as_sequence()
        .ok_or_else(|| TableError::Template(format!("{TABLE_RESOURCE}: {name} is not a list")))
}

fn key_schema(v: &Value) -> Result<Vec<(String, String)>, TableError> {
    list(v, "KeySchema")?
        .iter()
        .map(|k| Ok((text(k, "AttributeName")?, text(k, "KeyType")?)))
        .collect()
}

impl TableDefinition {
    /// Reads `Resources.KiteTable.Properties` of a SAM/CloudFormation template.
    pub fn from_template(template: &str) -> Result<TableDefinition, TableError> {
        let doc: Value = serde_yaml::from_str(template).map_err(|e| TableError::Template(e.to_string()))?;
        let props = doc
            .get("Resources")
            .and_then(|r| r.get(TABLE_RESOURCE))
            .and_then(|t| t.get("Properties"))
            .ok_or_else(|| TableError::Template(format!("no Resources.{TABLE_RESOURCE}.Properties")))?;
        let attributes = list(props, "AttributeDefinitions")?
            .iter()
            .map(|a| Ok((text(a, "AttributeName")?, text(a, "AttributeType")?)))
            .collect::<Result<_, TableError>>()?;
        let indexes = match props.get("GlobalSecondaryIndexes") {
            None => Vec::new(),
            Some(_) => list(props, "GlobalSecondaryIndexes")?
                .iter()
                .map(|i| {
                    Ok(IndexDefinition {
                        name: text(i, "IndexName")?,
                        keys: key_schema(i)?,
                        projection: text(field(i, "Projection")?, "ProjectionType")?,
                    })
                })
                .collect::<Result<_, TableError>>()?,
        };
        let stream_view_type = props
            .get("StreamSpecification")
            .map(|s| text(s, "StreamViewType"))
            .transpose()?;
        let ttl_attribute = props
            .get("TimeToLiveSpecification")
            .filter(|t| t.get("Enabled").and_then(Value::as_bool).unwrap_or(false))
            .map(|t| text(t, "AttributeName"))
            .transpose()?;
        Ok(TableDefinition {
            attributes,
            keys: key_schema(props)?,
            indexes,
            billing_mode: props
                .get("BillingMode")
                .and_then(Value::as_str)
                .unwrap_or("PROVISIONED")
                .to_string(),
            stream_view_type,
            ttl_attribute,
        })
    }

    /// The definition of this repository's template.yaml.
    pub fn kite() -> Result<TableDefinition, TableError> {
        TableDefinition::from_template(TEMPLATE)
    }

    fn keys(keys: &[(String, String)]) -> Result<Vec<KeySchemaElement>, TableError> {
        keys.iter()
            .map(|(name, kind)| {
                KeySchemaElement::builder()
                    .attribute_name(name)
                    .key_type(KeyType::from(kind.as_str()))
                    .build()
                    .map_err(|e| TableError::Template(e.to_string()))
            })
            .collect()
    }

    /// Creates the table `name` with this definition and enables its TTL.
    pub async fn create(&self, client: &aws_sdk_dynamodb::Client, name: &str) -> Result<(), TableError> {
        let create = |e: String| TableError::Create(e);
        let mut req = client
            .create_table()
            .table_name(name)
            .billing_mode(BillingMode::from(self.billing_mode.as_str()))
            .set_key_schema(Some(Self::keys(&self.keys)?));
        for (attr, kind) in &self.attributes {
            req = req.attribute_definitions(
                AttributeDefinition::builder()
                    .attribute_name(attr)
                    .attribute_type(ScalarAttributeType::from(kind.as_str()))
                    .build()
                    .map_err(|e| create(e.to_string()))?,
            );
        }
        for index in &self.indexes {
            req = req.global_secondary_indexes(
                GlobalSecondaryIndex::builder()
                    .index_name(&index.name)
                    .set_key_schema(Some(Self::keys(&index.keys)?))
                    .projection(
                        Projection::builder()
                            .projection_type(ProjectionType::from(index.projection.as_str()))
                            .build(),
                    )
                    .build()
                    .map_err(|e| create(e.to_string()))?,
            );
        }
        if let Some(view) = &self.stream_view_type {
            req = req.stream_specification(
                StreamSpecification::builder()
                    .stream_enabled(true)
                    .stream_view_type(StreamViewType::from(view.as_str()))
                    .build()
                    .map_err(|e| create(e.to_string()))?,
            );
        }
        req.send()
            .await
            .map_err(|e| create(crate::items::sdk(e).to_string()))?;
        if let Some(attr) = &self.ttl_attribute {
            client
                .update_time_to_live()
                .table_name(name)
                .time_to_live_specification(
                    TimeToLiveSpecification::builder()
                        .attribute_name(attr)
                        .enabled(true)
                        .build()
                        .map_err(|e| create(e.to_string()))?,
                )
                .send()
                .await
                .map_err(|e| create(crate::items::sdk(e).to_string()))?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The adapters' key design needs exactly these attributes and the `gsi1` index.
    #[test]
    fn the_template_has_what_the_adapters_use() {
        let def = TableDefinition::kite().expect("template.yaml parses");
        assert_eq!(
            def.keys,
            [("pk".into(), "HASH".into()), ("sk".into(), "RANGE".into())]
        );
        let gsi1 = def.indexes.iter().find(|i| i.name == "gsi1").expect("gsi1");
        assert_eq!(
            gsi1.keys,
            [
                ("gsi1pk".into(), "HASH".into()),
                ("gsi1sk".into(), "RANGE".into())
            ]
        );
        for attr in ["pk", "sk", "gsi1pk", "gsi1sk"] {
            assert!(
                def.attributes.contains(&(attr.to_string(), "S".to_string())),
                "{attr}"
            );
        }
        assert_eq!(def.billing_mode, "PAY_PER_REQUEST");
        assert_eq!(def.stream_view_type.as_deref(), Some("NEW_AND_OLD_IMAGES"));
        assert_eq!(def.ttl_attribute.as_deref(), Some("ttl"));
    }
}
