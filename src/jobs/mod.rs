//! Background work: each job is a loop of `tick`s run until its stop token
//! is cancelled, started and joined by `app`. Jobs call the domain
//! (`checkout`) or the store; nothing but `app` imports a job.

pub mod poller;
pub mod webhooks;
