//! One adapter per AWS service: the only code that calls the SDK.

pub mod bus;
pub mod capacity;
pub mod event_log;
pub mod fsx;
pub mod network;
pub mod registry;
pub mod sagemaker;
pub mod store;
pub mod timers;
pub mod tls;

/// The SDK clients, built once per cold start from `aws-config`'s default
/// chain (so `AWS_ENDPOINT_URL` and `AWS_REGION` point them at an emulator).
#[derive(Clone, Debug)]
pub struct Clients {
    pub s3: aws_sdk_s3::Client,
    pub fsx: aws_sdk_fsx::Client,
    pub sagemaker: aws_sdk_sagemaker::Client,
    pub sqs: aws_sdk_sqs::Client,
    pub events: aws_sdk_eventbridge::Client,
    pub ec2: aws_sdk_ec2::Client,
    pub efs: aws_sdk_efs::Client,
    pub servicequotas: aws_sdk_servicequotas::Client,
}

impl Clients {
    pub fn new(shared: &aws_config::SdkConfig) -> Clients {
        // Path-style S3 addressing works with every endpoint, real or emulated.
        let s3 = aws_sdk_s3::config::Builder::from(shared).force_path_style(true).build();
        Clients {
            s3: aws_sdk_s3::Client::from_conf(s3),
            fsx: aws_sdk_fsx::Client::new(shared),
            sagemaker: aws_sdk_sagemaker::Client::new(shared),
            sqs: aws_sdk_sqs::Client::new(shared),
            events: aws_sdk_eventbridge::Client::new(shared),
            ec2: aws_sdk_ec2::Client::new(shared),
            efs: aws_sdk_efs::Client::new(shared),
            servicequotas: aws_sdk_servicequotas::Client::new(shared),
        }
    }

    /// Clients from the default chain, with [`retry_config`] and one shared
    /// HTTPS client ([`tls::http_client`]).
    pub async fn from_env() -> Clients {
        Clients::new(&shared_config().await)
    }
}

/// The shared SDK configuration [`Clients::from_env`] uses, for the clients
/// only the command line needs (the functions never load them).
pub async fn shared_config() -> aws_config::SdkConfig {
    aws_config::defaults(aws_config::BehaviorVersion::latest())
        .retry_config(retry_config())
        .http_client(tls::http_client(tls::Roots::from_env()))
        .load()
        .await
}

/// Standard retry mode (exponential backoff with jitter, retry quota) with
/// 5 attempts instead of 3: throttling and 5xx bursts are common on FSx and
/// SageMaker control planes, and a call that still fails fails its batch
/// items back to SQS, which costs a redelivery rather than data.
pub fn retry_config() -> aws_config::retry::RetryConfig {
    aws_config::retry::RetryConfig::standard().with_max_attempts(5)
}
