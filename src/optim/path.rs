//! Several L-BFGS runs on one oracle in lockstep: a regularisation path, one model per λ.
//!
//! Each model keeps its own L-BFGS state, line search and stopping rule: it is exactly
//! [`minimize_from`] with its own λ, run on a thread of its own. Its oracle calls go to
//! the caller's thread, which waits until every model still running has asked for J and
//! ∇J at its next point and then answers them all with one
//! [`Oracle::losses_and_gradients`] call. An oracle that evaluates such a batch in one
//! pass over X therefore reads X once per round for all the models. A model that has
//! stopped leaves the batch, so the batches shrink as models converge.
//!
//! The models' results do not depend on one another: each sees the values the oracle
//! gives for its own point, so a model of a path gets what [`minimize_from`] alone gets
//! from an oracle whose batch results equal its single-point results (the crate's
//! oracles). The callback runs on the caller's thread, model by model in path order.
//!
//! With [`Batching::Fixed`] every batch holds every model in its own place, a model that
//! has stopped at a point of zeros: the oracle's products then have the same width on
//! every call, so the values a model gets depend on its own point alone, not on where the
//! others are. That is what lets a checkpoint hold each model's state from its own
//! iteration, and a resumed path repeat the uninterrupted one bit for bit.

use std::ops::ControlFlow;
use std::sync::mpsc::{Receiver, Sender, channel};

use ndarray::{Array1, Array2, ArrayView1, ArrayView2};

use super::lbfgs::{LbfgsIteration, LbfgsResult, LbfgsSettings, LbfgsState, Start, minimize_from};
use crate::error::{Error, Result};
use crate::objective::{LossGrad, Oracle, PointAt};

/// What a model's thread asks of the caller's thread.
enum Request {
    /// J and ∇J at these parameters.
    Evaluate(Array2<f32>, Array1<f32>),
    /// An iteration ended with this report; continue or stop?
    Iteration(LbfgsIteration),
    /// The model's state, as the caller asked.
    State(Box<LbfgsState>),
    /// The run ended.
    Done(Result<LbfgsResult>),
}

/// The caller's answer to a model's request.
enum Reply {
    Evaluated(Result<LossGrad>),
    /// Send the state at the iteration just reported.
    SendState,
    Flow(ControlFlow<()>),
}

/// A model thread's two channels to the caller's thread.
struct Link {
    requests: Sender<Request>,
    replies: Receiver<Reply>,
}

/// The error a model's thread sees when the caller's thread has stopped answering (the
/// caller returns its own error, and the model's is dropped).
fn path_ended() -> Error {
    Error::Gpu {
        context: "training a regularisation path".to_string(),
        message: "the path stopped before this model's oracle call was answered".to_string(),
    }
}

impl Link {
    fn ask(&self, request: Request) -> Result<Reply> {
        self.requests.send(request).map_err(|_| path_ended())?;
        self.replies.recv().map_err(|_| path_ended())
    }

    /// Sends an iteration's report and waits for the answer, sending a copy of the state
    /// first if the caller asks for it; a caller that has stopped listening stops the
    /// model.
    fn iteration(&self, it: &LbfgsIteration, state: &LbfgsState) -> ControlFlow<()> {
        let mut reply = self.ask(Request::Iteration(*it));
        loop {
            match reply {
                Ok(Reply::Flow(flow)) => return flow,
                Ok(Reply::SendState) => {
                    reply = self.ask(Request::State(Box::new(state.clone())));
                }
                _ => return ControlFlow::Break(()),
            }
        }
    }
}

/// The oracle a model's thread sees: every call is a request to the caller's thread.
struct Proxy<'l> {
    shape: (usize, usize, usize),
    link: &'l Link,
}

impl Oracle for Proxy<'_> {
    fn shape(&self) -> (usize, usize, usize) {
        self.shape
    }

    fn loss_and_gradient(
        &mut self,
        theta: ArrayView2<'_, f32>,
        bias: ArrayView1<'_, f32>,
        _l2: f64,
    ) -> Result<LossGrad> {
        match self
            .link
            .ask(Request::Evaluate(theta.to_owned(), bias.to_owned()))?
        {
            Reply::Evaluated(result) => result,
            Reply::SendState | Reply::Flow(_) => Err(path_ended()),
        }
    }
}

/// One model of a path: where it starts and its λ.
#[derive(Debug, Clone)]
pub struct PathStart {
    /// Where L-BFGS starts.
    pub start: Start,
    /// λ of the model's objective.
    pub l2: f64,
}

/// How the models still running are put to the oracle.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Batching {
    /// Only the models still running: the products shrink as models stop.
    Shrinking,
    /// Every model in its own place on every call, a stopped one at a point of zeros
    /// (whose values are dropped): each model's values depend on its own point alone.
    Fixed,
}

/// What the callback can ask of the model that has just reported: its whole L-BFGS
/// state at that iteration (a copy, made only when asked).
pub type StateRequest<'a> = dyn FnMut() -> Result<LbfgsState> + 'a;

/// Minimises J with λ = `runs[s].l2` from `runs[s].start` for every s at once, in
/// lockstep (see the module's documentation), and returns the results in the same order.
/// `on_iteration(s, report, state)` is called after each iteration of model s; `state()`
/// gives the model's [`LbfgsState`] there (to checkpoint it: [`Start::Resume`] continues
/// from it). `ControlFlow::Break` stops that model (status `Stopped`). `on_round()` is
/// called once every running model has reported up to its next oracle call, and once
/// more when every model has stopped; its error ends the path.
pub fn minimize_path(
    oracle: &mut dyn Oracle,
    runs: Vec<PathStart>,
    settings: &LbfgsSettings,
    batching: Batching,
    mut on_iteration: impl FnMut(usize, &LbfgsIteration, &mut StateRequest<'_>) -> ControlFlow<()>,
    mut on_round: impl FnMut() -> Result<()>,
) -> Result<Vec<LbfgsResult>> {
    settings.validate()?;
    for run in &runs {
        if !(run.l2.is_finite() && run.l2 >= 0.0) {
            return Err(Error::setting("l2", run.l2, "must be a finite number ≥ 0"));
        }
    }
    let shape = oracle.shape();
    let l2s: Vec<f64> = runs.iter().map(|r| r.l2).collect();
    std::thread::scope(|scope| {
        let mut models = Vec::with_capacity(runs.len());
        for run in runs {
            let (request_tx, request_rx) = channel();
            let (reply_tx, reply_rx) = channel();
            let settings = settings.clone();
            scope.spawn(move || {
                let link = Link {
                    requests: request_tx,
                    replies: reply_rx,
                };
                let mut proxy = Proxy { shape, link: &link };
                let result =
                    minimize_from(&mut proxy, run.start, run.l2, &settings, |it, state| {
                        link.iteration(it, state)
                    });
                // The caller may have stopped listening after an error of its own.
                let _ = link.requests.send(Request::Done(result));
            });
            models.push(Model {
                requests: request_rx,
                replies: Some(reply_tx),
                result: None,
            });
        }
        // Dropping `models` on any return closes every reply channel, so each model's
        // thread ends (its oracle call fails) before the scope joins it.
        let mut watch = Watch {
            on_iteration: &mut on_iteration,
            on_round: &mut on_round,
        };
        coordinate(oracle, &mut models, &l2s, batching, &mut watch)
    })
}

/// The caller's two callbacks.
struct Watch<'a> {
    on_iteration:
        &'a mut dyn FnMut(usize, &LbfgsIteration, &mut StateRequest<'_>) -> ControlFlow<()>,
    on_round: &'a mut dyn FnMut() -> Result<()>,
}

/// The caller's side of one model.
struct Model {
    requests: Receiver<Request>,
    /// `None` once the model's run has ended.
    replies: Option<Sender<Reply>>,
    result: Option<LbfgsResult>,
}

/// Rounds of: each running model, in path order, up to its next oracle call (answering
/// its iteration reports on the way); then one batch call for all of them.
fn coordinate(
    oracle: &mut dyn Oracle,
    models: &mut [Model],
    l2s: &[f64],
    batching: Batching,
    watch: &mut Watch<'_>,
) -> Result<Vec<LbfgsResult>> {
    let (_, n, k) = oracle.shape();
    let (zero_theta, zero_bias) = (Array2::<f32>::zeros((n, k)), Array1::<f32>::zeros(k));
    loop {
        let mut batch: Vec<(usize, Array2<f32>, Array1<f32>)> = Vec::new();
        for (s, model) in models.iter_mut().enumerate() {
            let Some(replies) = &model.replies else {
                continue;
            };
            loop {
                match model.requests.recv().map_err(|_| path_ended())? {
                    Request::Evaluate(theta, bias) => {
                        batch.push((s, theta, bias));
                        break;
                    }
                    Request::Iteration(it) => {
                        let requests = &model.requests;
                        let mut state = || -> Result<LbfgsState> {
                            replies.send(Reply::SendState).map_err(|_| path_ended())?;
                            match requests.recv().map_err(|_| path_ended())? {
                                Request::State(state) => Ok(*state),
                                _ => Err(path_ended()),
                            }
                        };
                        let flow = (watch.on_iteration)(s, &it, &mut state);
                        replies.send(Reply::Flow(flow)).map_err(|_| path_ended())?;
                    }
                    Request::State(_) => return Err(path_ended()),
                    Request::Done(result) => {
                        model.result = Some(result?);
                        model.replies = None;
                        break;
                    }
                }
            }
        }
        (watch.on_round)()?;
        if batch.is_empty() {
            break;
        }
        let mut points: Vec<(usize, PointAt<'_>)> = batch
            .iter()
            .map(|(s, theta, bias)| {
                let point = PointAt {
                    theta: theta.view(),
                    bias: bias.view(),
                    l2: l2s[*s],
                };
                (*s, point)
            })
            .collect();
        if batching == Batching::Fixed {
            // Every model in its place; the stopped ones at zeros.
            for (s, &l2) in l2s.iter().enumerate() {
                if points.get(s).is_none_or(|(at, _)| *at != s) {
                    let zeros = PointAt {
                        theta: zero_theta.view(),
                        bias: zero_bias.view(),
                        l2,
                    };
                    points.insert(s, (s, zeros));
                }
            }
        }
        let (owners, points): (Vec<usize>, Vec<PointAt<'_>>) = points.into_iter().unzip();
        let values = oracle.losses_and_gradients(&points)?;
        if values.len() != points.len() {
            return Err(Error::shape(
                "the oracle's batch of results",
                &[points.len()],
                &[values.len()],
            ));
        }
        for (s, value) in owners.iter().zip(values) {
            if let Some(replies) = &models[*s].replies {
                replies
                    .send(Reply::Evaluated(Ok(value)))
                    .map_err(|_| path_ended())?;
            }
        }
    }
    models
        .iter_mut()
        .map(|m| m.result.take().ok_or_else(path_ended))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::data::Dataset;
    use crate::objective::CpuOracle;
    use crate::optim::lbfgs::minimize_from;

    fn problem() -> Dataset {
        let (m, n, k) = (60, 5, 3);
        let mut rng = crate::rng::SplitMix64::new(7);
        let x: Vec<f32> = (0..m * n)
            .map(|_| rng.next_f64() as f32 * 2.0 - 1.0)
            .collect();
        let labels: Vec<u32> = (0..m).map(|i| (i % k) as u32).collect();
        let x = ndarray::Array2::from_shape_vec((m, n), x).unwrap();
        Dataset::new(x, &labels, k).unwrap()
    }

    /// Each model of a path ends where its own single run ends, bit for bit, and the
    /// callback sees every model's iterations in path order.
    #[test]
    fn a_path_gives_each_model_its_single_run() {
        let data = problem();
        let len = data.n_features() * data.n_classes() + data.n_classes();
        let settings = LbfgsSettings {
            tol: 1e-9,
            ..LbfgsSettings::default()
        };
        let l2s = [1e-1, 1e-2, 1e-3];
        let mut oracle = CpuOracle::new(&data).unwrap();
        let runs = l2s
            .iter()
            .map(|&l2| PathStart {
                start: Start::At(vec![0.0; len]),
                l2,
            })
            .collect();
        let mut seen = vec![0usize; l2s.len()];
        let path = minimize_path(
            &mut oracle,
            runs,
            &settings,
            Batching::Shrinking,
            |s, it, _| {
                seen[s] += 1;
                assert_eq!(it.iteration, seen[s]);
                ControlFlow::Continue(())
            },
            || Ok(()),
        )
        .unwrap();
        for (s, &l2) in l2s.iter().enumerate() {
            let single = minimize_from(
                &mut oracle,
                Start::At(vec![0.0; len]),
                l2,
                &settings,
                |_, _| ControlFlow::Continue(()),
            )
            .unwrap();
            assert_eq!(path[s].loss.to_bits(), single.loss.to_bits(), "λ = {l2}");
            assert_eq!(path[s].theta, single.theta, "λ = {l2}");
            assert_eq!(path[s].iterations, single.iterations);
            assert_eq!(path[s].iterations, seen[s]);
            assert_eq!(path[s].status, crate::optim::Status::Converged);
        }
        // Stronger regularisation, smaller weights.
        let norm = |t: &Array2<f32>| t.iter().map(|v| v * v).sum::<f32>();
        assert!(norm(&path[0].theta) < norm(&path[1].theta));
        assert!(norm(&path[1].theta) < norm(&path[2].theta));
    }

    /// Breaking from the callback stops that model alone.
    #[test]
    fn a_stopped_model_leaves_the_others_running() {
        let data = problem();
        let len = data.n_features() * data.n_classes() + data.n_classes();
        let mut oracle = CpuOracle::new(&data).unwrap();
        let runs = [1e-2, 1e-3]
            .iter()
            .map(|&l2| PathStart {
                start: Start::At(vec![0.0; len]),
                l2,
            })
            .collect();
        let settings = LbfgsSettings {
            tol: 1e-9,
            ..LbfgsSettings::default()
        };
        let path = minimize_path(
            &mut oracle,
            runs,
            &settings,
            Batching::Shrinking,
            |s, it, _| {
                if s == 0 && it.iteration == 2 {
                    ControlFlow::Break(())
                } else {
                    ControlFlow::Continue(())
                }
            },
            || Ok(()),
        )
        .unwrap();
        assert_eq!(path[0].status, crate::optim::Status::Stopped);
        assert_eq!(path[0].iterations, 2);
        assert_eq!(path[1].status, crate::optim::Status::Converged);
    }

    /// An oracle error ends the path with that error, and every model's thread ends.
    #[test]
    fn an_oracle_error_ends_the_path() {
        struct Failing(usize);
        impl Oracle for Failing {
            fn shape(&self) -> (usize, usize, usize) {
                (4, 2, 2)
            }
            fn loss_and_gradient(
                &mut self,
                _: ArrayView2<'_, f32>,
                _: ArrayView1<'_, f32>,
                _: f64,
            ) -> Result<LossGrad> {
                self.0 += 1;
                Err(Error::NoRows)
            }
        }
        let runs = (0..3)
            .map(|_| PathStart {
                start: Start::At(vec![0.0; 6]),
                l2: 1e-3,
            })
            .collect();
        let mut oracle = Failing(0);
        let err = minimize_path(
            &mut oracle,
            runs,
            &LbfgsSettings::default(),
            Batching::Shrinking,
            |_, _, _| ControlFlow::Continue(()),
            || Ok(()),
        )
        .unwrap_err();
        assert!(matches!(err, Error::NoRows), "{err}");
        assert_eq!(oracle.0, 1);
    }

    /// With fixed batching, a path resumed from each model's state at an iteration of its
    /// own (different iterations for different models) ends bit for bit where the
    /// uninterrupted path ends; the state a model hands out is the one it continues from.
    #[test]
    fn a_fixed_path_resumes_from_each_models_own_iteration() {
        let data = problem();
        let len = data.n_features() * data.n_classes() + data.n_classes();
        let settings = LbfgsSettings {
            tol: 1e-9,
            ..LbfgsSettings::default()
        };
        let l2s = [1e-1, 1e-2, 1e-3];
        let mut oracle = CpuOracle::new(&data).unwrap();
        let fresh = || {
            l2s.iter()
                .map(|&l2| PathStart {
                    start: Start::At(vec![0.0; len]),
                    l2,
                })
                .collect::<Vec<_>>()
        };
        // Model s keeps its state after iteration 3 + 2s.
        let mut kept: Vec<Option<LbfgsState>> = vec![None; l2s.len()];
        let mut rounds = 0;
        let whole = minimize_path(
            &mut oracle,
            fresh(),
            &settings,
            Batching::Fixed,
            |s, it, state| {
                if it.iteration == 3 + 2 * s {
                    let state = state().unwrap();
                    assert_eq!(state.iteration, it.iteration);
                    assert_eq!(state.f.to_bits(), it.loss.to_bits());
                    kept[s] = Some(state);
                }
                ControlFlow::Continue(())
            },
            || {
                rounds += 1;
                Ok(())
            },
        )
        .unwrap();
        assert!(rounds > 10);
        let resumed_runs = kept
            .into_iter()
            .zip(l2s)
            .map(|(state, l2)| PathStart {
                start: Start::Resume(state.unwrap()),
                l2,
            })
            .collect();
        let resumed = minimize_path(
            &mut oracle,
            resumed_runs,
            &settings,
            Batching::Fixed,
            |_, _, _| ControlFlow::Continue(()),
            || Ok(()),
        )
        .unwrap();
        for (a, b) in whole.iter().zip(&resumed) {
            assert_eq!(a.loss.to_bits(), b.loss.to_bits());
            assert_eq!(a.theta, b.theta);
            assert_eq!(a.bias, b.bias);
            assert_eq!(a.iterations, b.iterations);
            assert_eq!(a.evaluations, b.evaluations);
            assert_eq!(a.status, b.status);
        }
    }
}
