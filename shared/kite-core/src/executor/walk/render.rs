//! Rendering a task's properties against the execution, and the walk's log lines.

use super::*;

impl<'a> Machine<'a> {
    pub(super) fn readable_prefixes(&self, exec: &Execution) -> Vec<String> {
        crate::run_variables::readable_prefixes(exec)
    }

    pub(super) fn render_context<'c>(
        &self,
        vars: &'c Value,
        prefixes: &'c [String],
        logs: &'c [Value],
    ) -> RenderContext<'c>
    where
        'a: 'c,
    {
        RenderContext {
            variables: vars,
            files: self.env.files,
            readable_prefixes: prefixes,
            error_logs: logs,
            now: self.now(),
            secrets: self.env.secrets,
            kv: self.env.kv,
        }
    }

    pub(super) fn with_vars<R>(
        &self,
        exec: &Execution,
        i: usize,
        task: &Task,
        f: impl FnOnce(&RenderContext) -> R,
    ) -> R {
        let mut vars = run_variables::for_task_run(self.flow, exec, &runs(exec)[i], task, self.env.into());
        if let (Some((items, iteration)), Some(Value::Object(taskrun))) =
            (&self.batch, vars.get_mut("taskrun"))
        {
            taskrun.insert("items".into(), Value::String(items.clone()));
            taskrun.insert("iteration".into(), Value::from(*iteration));
        }
        let prefixes = self.readable_prefixes(exec);
        let ctx = self.render_context(&vars, &prefixes, &[]);
        f(&ctx)
    }

    pub(super) fn render(
        &self,
        exec: &Execution,
        i: usize,
        task: &Task,
        v: &Value,
    ) -> Result<String, ExpressionError> {
        match v {
            Value::String(s) if s.contains('{') => {
                self.with_vars(exec, i, task, |ctx| self.env.expressions.render(s, ctx))
            }
            other => Ok(write_pebble(other)),
        }
    }

    pub(super) fn render_typed(
        &self,
        exec: &Execution,
        i: usize,
        task: &Task,
        s: &str,
    ) -> Result<Value, ExpressionError> {
        self.with_vars(exec, i, task, |ctx| self.env.expressions.render_typed(s, ctx))
    }

    pub(super) fn render_value(
        &self,
        exec: &Execution,
        i: usize,
        task: &Task,
        v: &Value,
    ) -> Result<Value, ExpressionError> {
        self.with_vars(exec, i, task, |ctx| self.env.expressions.render_value(v, ctx))
    }

    pub(super) fn duration(
        &self,
        exec: &Execution,
        i: usize,
        task: &Task,
        v: &Value,
    ) -> Result<Duration, TaskRunError> {
        let s = self.render(exec, i, task, v)?;
        parse_iso_duration(&s).ok_or(TaskRunError::InvalidDuration(s))
    }

    pub(super) fn log_task(&mut self, exec: &Execution, i: usize, level: LogLevel, message: String) {
        let line = LogEntry::for_task_run(exec, &runs(exec)[i], level, message, self.now());
        self.logs.push(line);
    }

    pub(super) fn log_execution(&mut self, exec: &Execution, level: LogLevel, message: String) {
        let line = LogEntry::for_execution(exec, level, message, self.now());
        self.logs.push(line);
    }
}
