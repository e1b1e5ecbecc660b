//! Crash points: an SDK interceptor on the handlers' clients that, at a
//! chosen call of an invocation, either kills the invocation right after the
//! emulator applied the call (the reply arrived, the process is gone: no
//! further call leaves it) or loses the reply (the SDK sees a dropped
//! connection and retries a request that already took effect).
//!
//! It works on the SDK's own interceptor hooks, so every call still goes
//! over the real wire protocol to the emulator.

use aws_smithy_runtime_api::box_error::BoxError;
use aws_smithy_runtime_api::client::interceptors::context::{
    BeforeSerializationInterceptorContextRef, BeforeTransmitInterceptorContextRef, FinalizerInterceptorContextMut,
};
use aws_smithy_runtime_api::client::interceptors::Intercept;
use aws_smithy_runtime_api::client::orchestrator::OrchestratorError;
use aws_smithy_runtime_api::client::result::ConnectorError;
use aws_smithy_runtime_api::client::runtime_components::RuntimeComponents;
use aws_smithy_types::config_bag::ConfigBag;
use retrain_aws::adapters::Clients;
use std::sync::{Arc, Mutex};

/// What happens at the chosen call.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Mode {
    /// The call took effect; the invocation dies before it can use the reply.
    Die,
    /// The call took effect; its reply is lost and the SDK sends it again.
    LostReply,
}

#[derive(Debug, Default)]
struct State {
    /// The calls (1-based, counting every attempt that reached the emulator) to strike, and how.
    armed: Vec<(u32, Mode)>,
    /// Or: the first call with this method whose request URI contains this text.
    matching: Option<(String, String, Mode)>,
    /// Method and URI of the request in flight (the completion hook no longer sees the request).
    in_flight: (String, String),
    /// Calls of the current invocation that got a reply.
    calls: u32,
    dead: bool,
    /// What was struck so far in this invocation.
    struck: Vec<Struck>,
}

/// Shared by every client of the handlers; the harness arms it per invocation.
#[derive(Debug, Clone, Default)]
pub struct CrashPoints {
    state: Arc<Mutex<State>>,
}

/// What one invocation went through.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Struck {
    pub call: u32,
    pub mode: Mode,
    pub operation: String,
}

impl CrashPoints {
    fn lock(&self) -> std::sync::MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Starts an invocation: strike each of its listed calls with its mode.
    pub fn arm(&self, at: Vec<(u32, Mode)>) {
        let mut s = self.lock();
        let matching = s.matching.take();
        *s = State {
            armed: at,
            matching,
            ..State::default()
        };
    }

    /// Strikes the first call with `method` whose request URI contains `text` (e.g. an S3 key), in any invocation, once.
    pub fn arm_matching(&self, method: &str, text: &str, mode: Mode) {
        *self.lock() = State {
            matching: Some((method.to_owned(), text.to_owned(), mode)),
            ..State::default()
        };
    }

    /// Lets a dead invocation's successor call again, keeping no plan.
    pub fn revive(&self) {
        *self.lock() = State::default();
    }

    /// Ends an invocation: what was struck (nothing when it made fewer calls), and its call count.
    pub fn disarm(&self) -> (Vec<Struck>, u32) {
        let mut s = self.lock();
        let struck = std::mem::take(&mut s.struck);
        let calls = s.calls;
        let matching = s.matching.take();
        *s = State {
            matching,
            ..State::default()
        };
        (struck, calls)
    }

    /// Whether the current invocation has died.
    pub fn dead(&self) -> bool {
        self.lock().dead
    }
}

impl Intercept for CrashPoints {
    fn name(&self) -> &'static str {
        "CrashPoints"
    }

    fn read_before_execution(&self, _context: &BeforeSerializationInterceptorContextRef<'_>, _cfg: &mut ConfigBag) -> Result<(), BoxError> {
        if self.lock().dead {
            return Err("the invocation died: no further call leaves it".into());
        }
        Ok(())
    }

    fn read_before_transmit(
        &self,
        context: &BeforeTransmitInterceptorContextRef<'_>,
        _runtime_components: &RuntimeComponents,
        _cfg: &mut ConfigBag,
    ) -> Result<(), BoxError> {
        let request = context.request();
        self.lock().in_flight = (request.method().to_owned(), request.uri().to_owned());
        Ok(())
    }

    fn modify_before_attempt_completion(
        &self,
        context: &mut FinalizerInterceptorContextMut<'_>,
        _runtime_components: &RuntimeComponents,
        cfg: &mut ConfigBag,
    ) -> Result<(), BoxError> {
        if context.response().is_none() {
            return Ok(());
        }
        let mut s = self.lock();
        if s.dead {
            return Err("the invocation died".into());
        }
        s.calls += 1;
        let (method, uri) = s.in_flight.clone();
        let by_uri = s
            .matching
            .as_ref()
            .filter(|(m, text, _)| *m == method && uri.contains(text.as_str()))
            .map(|(_, _, mode)| (s.calls, *mode));
        if let Some(at) = by_uri {
            s.matching = None;
            s.armed.push(at);
        }
        let Some((call, mode)) = s.armed.iter().copied().find(|(call, _)| *call == s.calls) else {
            return Ok(());
        };
        let operation = cfg
            .load::<aws_smithy_runtime_api::client::orchestrator::Metadata>()
            .map(|m| format!("{}:{}", m.service(), m.name()))
            .unwrap_or_else(|| format!("call {call}"));
        s.struck.push(Struck { call, mode, operation });
        match mode {
            Mode::Die => {
                s.dead = true;
                Err("the invocation died right after this call took effect".into())
            }
            Mode::LostReply => {
                if let Some(result) = context.output_or_error_mut() {
                    *result = Err(OrchestratorError::connector(ConnectorError::io(
                        "the reply was lost after the call took effect".into(),
                    )));
                }
                Ok(())
            }
        }
    }
}

/// The handlers' clients with the crash points on every one of them.
pub fn clients(shared: &aws_config::SdkConfig, points: &CrashPoints) -> Clients {
    let s3 = aws_sdk_s3::config::Builder::from(shared)
        .force_path_style(true)
        .interceptor(points.clone())
        .build();
    Clients {
        s3: aws_sdk_s3::Client::from_conf(s3),
        fsx: aws_sdk_fsx::Client::from_conf(aws_sdk_fsx::config::Builder::from(shared).interceptor(points.clone()).build()),
        sagemaker: aws_sdk_sagemaker::Client::from_conf(
            aws_sdk_sagemaker::config::Builder::from(shared).interceptor(points.clone()).build(),
        ),
        sqs: aws_sdk_sqs::Client::from_conf(aws_sdk_sqs::config::Builder::from(shared).interceptor(points.clone()).build()),
        events: aws_sdk_eventbridge::Client::from_conf(
            aws_sdk_eventbridge::config::Builder::from(shared)
                .interceptor(points.clone())
                .build(),
        ),
        ec2: aws_sdk_ec2::Client::from_conf(aws_sdk_ec2::config::Builder::from(shared).interceptor(points.clone()).build()),
        efs: aws_sdk_efs::Client::from_conf(aws_sdk_efs::config::Builder::from(shared).interceptor(points.clone()).build()),
        servicequotas: aws_sdk_servicequotas::Client::from_conf(
            aws_sdk_servicequotas::config::Builder::from(shared)
                .interceptor(points.clone())
                .build(),
        ),
    }
}
